import Foundation
import SageSystem

/// Running Compose command lines: failures become RuntimeErrors that name the command, with secrets hidden.
extension ComposeCLI {
    /// Runs a command line; a failure (non-zero exit, timeout, missing program) becomes a RuntimeError.
    public func run(_ argv: [String], service: ServiceID? = nil, input: [UInt8] = [], deadline: Deadline) throws -> CompletedProcess {
        let r = try runUnchecked(argv, service: service, input: input, deadline: deadline)
        guard r.status.isSuccess else { throw failure(argv, r, service: service) }
        return r
    }

    /// Runs a command line and returns whatever it did; only a failure to run it at all throws.
    public func runUnchecked(_ argv: [String], service: ServiceID? = nil, input: [UInt8] = [], deadline: Deadline) throws -> CompletedProcess {
        do {
            return try Subprocess.run(argv, environment: environment, workingDirectory: workingDirectory, input: input, deadline: deadline)
        } catch let e as SystemError {
            let what = e.code == .timedOut ? "did not finish in time and was stopped" : "could not run: \(redact(e.message))"
            throw RuntimeError(service, "`\(display(argv))` \(what)\(e.code == .timedOut ? "; check the engine with `docker info`" : "")")
        }
    }

    /// The error for a failed invocation: command, exit code and stderr, plus what to do for well-known causes.
    public func failure(_ argv: [String], _ r: CompletedProcess, service: ServiceID?) -> RuntimeError {
        failure(argv, status: r.status, stdout: r.stdoutText, stderr: r.stderrText, service: service)
    }

    public func failure(_ argv: [String], status: ExitStatus, stdout: String, stderr: String, service: ServiceID?) -> RuntimeError {
        let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let out = stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let detail = ComposeCLI.lastLines(err.isEmpty ? out : err, 12)
        var message = "`\(display(argv))` failed (\(status)): \(redact(detail))"
        if let hint = ComposeCLI.hint(forError: err, environment: environment) { message += "\n\(hint)" }
        return RuntimeError(service, message)
    }

    /// Known failure causes and their fixes.
    static func hint(forError err: String, environment: [String: String]) -> String? {
        if err.contains("Cannot connect to the Docker daemon") || err.contains("Is the docker daemon running")
            || err.contains("docker.sock: connect") {
            return "no Docker engine answers at \(DockerEngineProbe.describeHost(environment)): start Docker or point DOCKER_HOST at a running engine, or set SAGEDEV_RUNTIME=native in .env"
        }
        if err.contains("start_interval") && err.contains("v25") {
            return "this Docker engine is older than v25 and rejects healthcheck start_interval"
        }
        return nil
    }

    /// The command as people read it, with secrets hidden.
    public func display(_ argv: [String]) -> String {
        var shown = argv
        if let first = shown.first, let slash = first.lastIndex(of: "/") { shown[0] = String(first[first.index(after: slash)...]) }
        return redact(shown.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " "))
    }

    public func redact(_ text: String) -> String {
        var t = text
        for s in secrets where s.count >= 3 { t = t.replacingOccurrences(of: s, with: "****") }
        return t
    }

    /// Runs `ps --format json` (or `docker ps` for Compose v1) and parses it.
    ///
    /// `ps` lists the project's containers and then inspects each; a container removed in between (a recreating
    /// `up` of this project, a `down` of another) fails the whole command with "No such container". That is a
    /// race, not an answer: the listing is taken again, so it is never mistaken for a missing or crashed service.
    public func containers(deadline: Deadline) throws -> [ComposeContainer] {
        let argv = installation.isLegacy ? dockerPS() : ps(all: true)
        var r = try runUnchecked(argv, deadline: deadline)
        var attempts = 1
        while !r.status.isSuccess, attempts < 5, !deadline.hasPassed, ComposeCLI.isListingRace(r.stderrText) {
            attempts += 1
            r = try runUnchecked(argv, deadline: deadline)
        }
        guard r.status.isSuccess else { throw failure(argv, r, service: nil) }
        do {
            return try ComposeContainer.parseList(r.stdoutText)
        } catch let e as RuntimeError {
            throw RuntimeError(nil, "`\(display(argv))`: \(e.message)")
        }
    }

    /// Starts a long-running command (`logs -f`, `events`) whose output is split into lines for `onLine`.
    public func follow(_ argv: [String], onLine: @escaping @Sendable (String, LineFollower.Stream) -> Void,
                       onExit: @escaping @Sendable (ExitStatus) -> Void) throws -> LineFollower {
        do {
            return try LineFollower.start(argv, environment: environment, workingDirectory: workingDirectory,
                                          onLine: onLine, onExit: onExit)
        } catch let e as SystemError {
            throw RuntimeError(nil, "`\(display(argv))` could not start: \(redact(e.message))")
        }
    }

    /// A container that vanished between `ps`'s listing and its inspection.
    static func isListingRace(_ stderr: String) -> Bool {
        stderr.contains("No such container") || stderr.contains("No such object")
    }

    static func firstLines(_ text: String, _ n: Int) -> String {
        text.split(separator: "\n").prefix(n).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
    static func lastLines(_ text: String, _ n: Int) -> String {
        text.split(separator: "\n").suffix(n).joined(separator: "\n")
    }
}
