import Foundation
import Dispatch
import SageSystem

/// Which Docker Compose this machine has, found once by `ComposeInstallation.detect`.
public struct ComposeInstallation: Sendable, Equatable {
    public enum Flavor: String, Sendable, Equatable {
        /// `docker compose`: the v2 CLI plugin.
        case plugin
        /// `docker-compose`: a standalone binary (v1, or a v2 build installed under that name).
        case standalone
    }
    public var flavor: Flavor
    /// The docker CLI (also used for `docker events`, `docker inspect` and `docker image …`).
    public var docker: String
    /// `docker-compose` for the standalone flavour.
    public var standalone: String?
    /// As printed by `version --short`, e.g. "2.26.1".
    public var version: String
    /// Set when sagedev works with this Compose but the user should upgrade.
    public var warning: String?

    public init(flavor: Flavor, docker: String, standalone: String? = nil, version: String, warning: String? = nil) {
        self.flavor = flavor; self.docker = docker; self.standalone = standalone; self.version = version; self.warning = warning
    }

    /// True for Compose v1 (1.x), which has no `ps --format json`.
    public var isLegacy: Bool { version.hasPrefix("1.") }

    /// argv prefix that runs Compose.
    public var command: [String] {
        switch flavor {
        case .plugin: return [docker, "compose"]
        case .standalone: return [standalone ?? "docker-compose"]
        }
    }

    /// Finds Compose v2 (`docker compose`), else `docker-compose` (v1 works, with a warning), else fails with a
    /// message that says how to install it.
    public static func detect(environment: [String: String], deadline: Deadline = .after(seconds: 10)) throws -> ComposeInstallation {
        let path = environment["PATH"]
        let docker = ProcessEnvironment.which("docker", path: path)
        if let docker,
           let r = try? Subprocess.run([docker, "compose", "version", "--short"], environment: environment, deadline: deadline),
           r.status.isSuccess {
            let v = cleanVersion(r.stdoutText)
            if !v.isEmpty { return ComposeInstallation(flavor: .plugin, docker: docker, version: v) }
        }
        if let legacy = ProcessEnvironment.which("docker-compose", path: path),
           let r = try? Subprocess.run([legacy, "version", "--short"], environment: environment, deadline: deadline),
           r.status.isSuccess {
            let v = cleanVersion(r.stdoutText)
            let warning = v.hasPrefix("1.")
                ? "only Docker Compose v1 (docker-compose \(v)) is installed; sagedev uses it, but v1 is end-of-life: install the Compose v2 plugin (scripts/bootstrap.sh does, or your distribution's docker-compose-plugin)"
                : nil
            return ComposeInstallation(flavor: .standalone, docker: docker ?? "docker", standalone: legacy, version: v, warning: warning)
        }
        if docker == nil {
            throw RuntimeError(nil, "the docker CLI is not installed (not found on PATH), so the compose runtime cannot run: install Docker (scripts/bootstrap.sh installs docker.io and the Compose v2 plugin) or set SAGEDEV_RUNTIME=native in .env; `sagedev doctor` checks this")
        }
        throw RuntimeError(nil, "Docker Compose is not installed: neither `docker compose` (the v2 plugin) nor `docker-compose` works: install the Compose v2 plugin (scripts/bootstrap.sh does) or set SAGEDEV_RUNTIME=native in .env; `sagedev doctor` checks this")
    }

    static func cleanVersion(_ s: String) -> String {
        var v = s.trimmingCharacters(in: .whitespacesAndNewlines)
        if v.hasPrefix("v") { v.removeFirst() }
        return v
    }
}

/// Talking to the Docker engine itself (not Compose): is it there, and which version.
public enum DockerEngineProbe {
    /// Where the docker CLI will connect, for messages.
    public static func describeHost(_ environment: [String: String]) -> String {
        if let h = environment["DOCKER_HOST"], !h.isEmpty { return h }
        if let c = environment["DOCKER_CONTEXT"], !c.isEmpty { return "docker context \(c)" }
        return "unix:///var/run/docker.sock"
    }

    /// True when `docker info` answers within `seconds` (2 s for the `auto` runtime choice).
    public static func answers(environment: [String: String], within seconds: Double = 2) -> Bool {
        guard let docker = ProcessEnvironment.which("docker", path: environment["PATH"]) else { return false }
        guard let r = try? Subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], environment: environment,
                                          deadline: .after(seconds: seconds)) else { return false }
        return r.status.isSuccess && !r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// The engine's version ("20.10.24+dfsg1"), or an error that says the engine is unreachable and what to do.
    public static func serverVersion(environment: [String: String], deadline: Deadline = .after(seconds: 5)) throws -> String {
        guard let docker = ProcessEnvironment.which("docker", path: environment["PATH"]) else {
            throw RuntimeError(nil, "the docker CLI is not installed (not found on PATH): install Docker or set SAGEDEV_RUNTIME=native in .env")
        }
        let host = describeHost(environment)
        let r: CompletedProcess
        do {
            r = try Subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], environment: environment, deadline: deadline)
        } catch let e as SystemError where e.code == .timedOut {
            throw RuntimeError(nil, "the Docker engine at \(host) did not answer in time: check that dockerd is running and healthy (`docker info`), or set SAGEDEV_RUNTIME=native in .env")
        }
        let version = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status.isSuccess, !version.isEmpty else {
            let why = ComposeCLI.firstLines(r.stderrText, 3)
            throw RuntimeError(nil, "no Docker engine answers at \(host)\(why.isEmpty ? "" : " (\(why))"): start Docker (e.g. `systemctl start docker`) or point DOCKER_HOST at a running engine, or set SAGEDEV_RUNTIME=native in .env")
        }
        return version
    }

    /// The major version number of an engine version string ("20.10.24+dfsg1" → 20).
    public static func majorVersion(_ version: String) -> Int? {
        Int(version.prefix(while: { $0.isNumber }))
    }
}

/// One container of the project as `docker compose ps --format json` (or `docker ps --format '{{json .}}'`) shows it.
public struct ComposeContainer: Sendable, Equatable {
    public struct Publisher: Sendable, Equatable {
        public var url: String
        public var targetPort: Int
        public var publishedPort: Int
        public var proto: String
        public init(url: String, targetPort: Int, publishedPort: Int, proto: String) {
            self.url = url; self.targetPort = targetPort; self.publishedPort = publishedPort; self.proto = proto
        }
    }
    public var id: String
    public var name: String
    public var service: String
    public var project: String
    public var image: String
    /// running, exited, created, restarting, paused, dead.
    public var state: String
    /// healthy, unhealthy, starting, or "" without a healthcheck.
    public var health: String
    public var status: String
    public var exitCode: Int?
    public var ports: String
    public var publishers: [Publisher]

    public init(id: String, name: String, service: String, project: String = "", image: String = "", state: String,
                health: String = "", status: String = "", exitCode: Int? = nil, ports: String = "", publishers: [Publisher] = []) {
        self.id = id; self.name = name; self.service = service; self.project = project; self.image = image
        self.state = state; self.health = health; self.status = status; self.exitCode = exitCode
        self.ports = ports; self.publishers = publishers
    }

    public var isRunning: Bool { state == "running" || state == "restarting" }

    /// Parses `ps` JSON output: Compose v2.21+ prints one object per line, older v2 a single array; an empty
    /// project prints nothing (or `[]`). Throws on anything else, quoting the start of the text.
    public static func parseList(_ text: String) throws -> [ComposeContainer] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        var objects: [[String: Any]] = []
        if trimmed.hasPrefix("[") {
            guard let array = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [Any] else {
                throw RuntimeError(nil, "cannot parse the JSON array from `ps --format json`: \(trimmed.prefix(200))")
            }
            for item in array {
                guard let o = item as? [String: Any] else { throw RuntimeError(nil, "`ps --format json` gave a non-object element") }
                objects.append(o)
            }
        } else {
            for line in trimmed.split(separator: "\n") {
                let l = line.trimmingCharacters(in: .whitespaces)
                if l.isEmpty { continue }
                guard let o = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else {
                    throw RuntimeError(nil, "cannot parse a line of `ps --format json`: \(l.prefix(200))")
                }
                objects.append(o)
            }
        }
        return objects.map(ComposeContainer.init(json:))
    }

    /// Builds a container from one JSON object, accepting the field names of both Compose and `docker ps`.
    public init(json o: [String: Any]) {
        func str(_ k: String) -> String {
            if let s = o[k] as? String { return s }
            if let n = o[k] as? NSNumber { return n.stringValue }
            return ""
        }
        let labels = ComposeContainer.parseLabels(o["Labels"])
        id = str("ID")
        name = str("Name").isEmpty ? str("Names") : str("Name")
        service = str("Service").isEmpty ? (labels["com.docker.compose.service"] ?? "") : str("Service")
        project = str("Project").isEmpty ? (labels["com.docker.compose.project"] ?? "") : str("Project")
        image = str("Image")
        status = str("Status")
        var st = str("State").lowercased()
        if st.isEmpty {
            // docker ps before 20.10 has no State: derive it from Status ("Up 3 minutes", "Exited (0) …").
            st = status.hasPrefix("Up") ? "running" : status.hasPrefix("Exited") ? "exited" : status.lowercased()
        }
        state = st
        var h = str("Health").lowercased()
        if h.isEmpty {
            for candidate in ["healthy", "unhealthy", "health: starting"] where status.contains("(\(candidate))") {
                h = candidate == "health: starting" ? "starting" : candidate
            }
        }
        health = h
        if let n = o["ExitCode"] as? NSNumber { exitCode = n.intValue } else { exitCode = Int(str("ExitCode")) }
        ports = str("Ports")
        var pubs: [Publisher] = []
        for p in (o["Publishers"] as? [Any]) ?? [] {
            guard let d = p as? [String: Any] else { continue }
            let published = (d["PublishedPort"] as? NSNumber)?.intValue ?? 0
            let target = (d["TargetPort"] as? NSNumber)?.intValue ?? 0
            pubs.append(Publisher(url: d["URL"] as? String ?? "", targetPort: target, publishedPort: published,
                                  proto: d["Protocol"] as? String ?? "tcp"))
        }
        publishers = pubs
    }

    /// Labels come as a "k=v,k=v" string from ps, or as an object from inspect.
    static func parseLabels(_ value: Any?) -> [String: String] {
        if let d = value as? [String: String] { return d }
        guard let s = value as? String else { return [:] }
        var out: [String: String] = [:]
        for pair in s.split(separator: ",") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        return out
    }

    /// Published ports as people read them: "127.0.0.1:5432->5432/tcp".
    public var portsDescription: String {
        let published = publishers.filter { $0.publishedPort != 0 }
        if published.isEmpty { return ports }
        return published.map { "\($0.url.isEmpty ? "" : $0.url + ":")\($0.publishedPort)->\($0.targetPort)/\($0.proto)" }
            .joined(separator: ", ")
    }
}

/// A container event from `docker events --format '{{json .}}'`.
public struct ContainerEvent: Sendable, Equatable {
    public var action: String
    public var containerID: String
    public var service: String
    public var project: String
    public var name: String
    public var exitCode: Int?
    /// Nanoseconds since the epoch.
    public var timeNano: Int64

    public init(action: String, containerID: String, service: String, project: String, name: String = "",
                exitCode: Int? = nil, timeNano: Int64 = 0) {
        self.action = action; self.containerID = containerID; self.service = service; self.project = project
        self.name = name; self.exitCode = exitCode; self.timeNano = timeNano
    }

    /// nil for lines that are not a container event.
    public static func parse(_ line: String) -> ContainerEvent? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        let type = (o["Type"] as? String) ?? "container"
        guard type == "container" else { return nil }
        let actor = o["Actor"] as? [String: Any] ?? [:]
        let attrs = actor["Attributes"] as? [String: String] ?? [:]
        let action = (o["Action"] as? String) ?? (o["status"] as? String) ?? ""
        let id = (actor["ID"] as? String) ?? (o["id"] as? String) ?? ""
        guard !action.isEmpty, !id.isEmpty else { return nil }
        var nano: Int64 = (o["timeNano"] as? NSNumber)?.int64Value ?? 0
        if nano == 0, let t = (o["time"] as? NSNumber)?.int64Value { nano = t * 1_000_000_000 }
        return ContainerEvent(action: action, containerID: id, service: attrs["com.docker.compose.service"] ?? "",
                              project: attrs["com.docker.compose.project"] ?? "", name: attrs["name"] ?? "",
                              exitCode: attrs["exitCode"].flatMap { Int($0) }, timeNano: nano)
    }

    /// Docker reports a main process killed by signal N as exit code 128+N.
    public var exitStatus: ExitStatus {
        guard let c = exitCode else { return .exited(-1) }
        if c > 128 && c < 128 + 65 { return .signalled(Int32(c - 128)) }
        return .exited(Int32(c))
    }
}

/// A value that builds `docker compose -p <project> -f <file> --env-file <.env> …` command lines and runs them.
/// Every failed invocation becomes a RuntimeError carrying the command, its exit code and its stderr, with any
/// secret in `secrets` shown as ****.
public struct ComposeCLI: Sendable, Equatable {
    public var installation: ComposeInstallation
    public var project: String
    public var file: String
    public var envFile: String?
    /// The children's environment (PATH, DOCKER_HOST, and the variables the compose file interpolates).
    public var environment: [String: String]
    public var workingDirectory: String?
    /// Values never shown in messages (passwords).
    public var secrets: [String]

    public init(installation: ComposeInstallation, project: String, file: String, envFile: String?,
                environment: [String: String], workingDirectory: String? = nil, secrets: [String] = []) {
        self.installation = installation; self.project = project; self.file = file; self.envFile = envFile
        self.environment = environment; self.workingDirectory = workingDirectory; self.secrets = secrets
    }

    // MARK: command lines

    /// `docker compose [--ansi never] -p P -f FILE [--env-file ENV]`.
    public var base: [String] {
        var argv = installation.command
        if !installation.isLegacy { argv += ["--ansi", "never"] }
        argv += ["-p", project, "-f", file]
        if let envFile { argv += ["--env-file", envFile] }
        return argv
    }

    public func up(_ services: [String] = [], build: Bool = false, noDeps: Bool = false, removeOrphans: Bool = true) -> [String] {
        var a = base + ["up", "-d"]
        if removeOrphans { a.append("--remove-orphans") }
        if noDeps { a.append("--no-deps") }
        if build { a.append("--build") }
        return a + services
    }

    public func ps(all: Bool = true) -> [String] {
        base + ["ps"] + (all ? ["--all"] : []) + ["--format", "json"]
    }

    /// `logs -f --timestamps --no-log-prefix [--since T] [--tail N] svc`: one line per container line, each
    /// prefixed by its RFC 3339 timestamp.
    public func logs(_ service: String, follow: Bool = true, since: String? = nil, tail: String? = nil) -> [String] {
        var a = base + ["logs"]
        if follow { a.append("-f") }
        a += ["--timestamps", "--no-log-prefix"]
        if let since { a += ["--since", since] }
        if let tail { a += ["--tail", tail] }
        return a + [service]
    }

    public func restart(_ services: [String], timeoutSeconds: Int? = nil) -> [String] {
        base + ["restart"] + (timeoutSeconds.map { ["-t", String($0)] } ?? []) + services
    }

    public func stop(_ services: [String] = [], timeoutSeconds: Int? = nil) -> [String] {
        base + ["stop"] + (timeoutSeconds.map { ["-t", String($0)] } ?? []) + services
    }

    /// `rm --stop --force [--volumes] [svc…]`: stops and removes containers; `--volumes` removes their anonymous
    /// volumes (named volumes stay).
    public func rm(_ services: [String] = [], anonymousVolumes: Bool = true) -> [String] {
        base + ["rm", "--stop", "--force"] + (anonymousVolumes ? ["--volumes"] : []) + services
    }

    public func down(volumes: Bool, removeOrphans: Bool = true, timeoutSeconds: Int? = nil) -> [String] {
        var a = base + ["down"]
        if volumes { a.append("--volumes") }
        if removeOrphans { a.append("--remove-orphans") }
        if let t = timeoutSeconds { a += ["-t", String(t)] }
        return a
    }

    /// `exec -T [-e K=V…] [-w DIR] svc command…`. Environment values go through our environment (`-e K`),
    /// never onto the command line, so they cannot be read from /proc.
    public func exec(_ service: String, _ command: [String], environmentKeys: [String] = [], workdir: String? = nil) -> [String] {
        var a = base + ["exec", "-T"]
        for k in environmentKeys { a += ["-e", k] }
        if let workdir { a += ["-w", workdir] }
        return a + [service] + command
    }

    /// `run --rm -T --no-deps [-e K…] svc command…`: a one-off container when the service is not running.
    public func run(_ service: String, _ command: [String], environmentKeys: [String] = []) -> [String] {
        var a = base + ["run", "--rm", "-T", "--no-deps"]
        for k in environmentKeys { a += ["-e", k] }
        return a + [service] + command
    }

    /// `docker events` for this project's container deaths, as JSON lines.
    public func events(since: String? = nil, actions: [String] = ["die"]) -> [String] {
        var a = [installation.docker, "events", "--format", "{{json .}}",
                 "--filter", "type=container", "--filter", "label=com.docker.compose.project=\(project)"]
        for act in actions { a += ["--filter", "event=\(act)"] }
        if let since { a += ["--since", since] }
        return a
    }

    public func inspect(_ ids: [String]) -> [String] { [installation.docker, "inspect", "--type", "container"] + ids }
    public func imageInspect(_ images: [String]) -> [String] {
        [installation.docker, "image", "inspect", "--format", "{{.Id}}"] + images
    }
    public func pull(_ image: String) -> [String] { [installation.docker, "pull", "--quiet", image] }

    /// `docker ps` for the project, for Compose v1 which has no `ps --format json`.
    public func dockerPS() -> [String] {
        [installation.docker, "ps", "--all", "--no-trunc", "--filter", "label=com.docker.compose.project=\(project)",
         "--format", "{{json .}}"]
    }

    // MARK: running

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
    public func containers(deadline: Deadline) throws -> [ComposeContainer] {
        let argv = installation.isLegacy ? dockerPS() : ps(all: true)
        let r = try run(argv, deadline: deadline)
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
}

/// A long-running child whose stdout and stderr are read as lines (on a Dispatch queue, woken by the kernel,
/// never polled on a timer). `onExit` runs once, after both streams ended and the child was reaped.
public final class LineFollower: @unchecked Sendable {
    public enum Stream: Sendable, Equatable { case stdout, stderr }

    public let argv: [String]
    public var pid: Int32 { child.pid }
    private let child: ChildProcess
    private let queue: DispatchQueue
    private let onLine: @Sendable (String, Stream) -> Void
    private let onExit: @Sendable (ExitStatus) -> Void
    private var sources: [DispatchSourceRead] = []
    private var partial: [Stream: [UInt8]] = [:]
    private var openStreams = 0
    private var exited = false
    private var finished = false
    private let done = DispatchGroup()
    private let result = Locked<ExitStatus?>(nil)

    private init(argv: [String], child: ChildProcess, onLine: @escaping @Sendable (String, Stream) -> Void,
                 onExit: @escaping @Sendable (ExitStatus) -> Void) {
        self.argv = argv; self.child = child; self.onLine = onLine; self.onExit = onExit
        self.queue = DispatchQueue(label: "sagedev.follow.\(child.pid)")
    }

    public static func start(_ argv: [String], environment: [String: String], workingDirectory: String? = nil,
                             onLine: @escaping @Sendable (String, Stream) -> Void,
                             onExit: @escaping @Sendable (ExitStatus) -> Void) throws -> LineFollower {
        guard let name = argv.first, let exe = ProcessEnvironment.which(name, path: environment["PATH"]) else {
            throw SystemError(.notFound, "\(argv.first ?? ""): command not found on PATH")
        }
        let child = try Spawner.spawn(SpawnSpec(executable: exe, arguments: argv, environment: environment,
                                                workingDirectory: workingDirectory, newSession: true,
                                                stdin: .null, stdout: .pipe, stderr: .pipe))
        let f = LineFollower(argv: argv, child: child, onLine: onLine, onExit: onExit)
        f.begin()
        return f
    }

    private func begin() {
        done.enter()
        queue.sync {
            for (stream, fd) in [(Stream.stdout, child.takeStdout()), (.stderr, child.takeStderr())] {
                guard let fd else { continue }
                FileDescriptor.setNonBlocking(fd)
                openStreams += 1
                let src = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
                src.setEventHandler { [self] in self.drain(fd, stream, src) }
                src.setCancelHandler { close(fd) }
                sources.append(src)
                src.resume()
            }
            let pidfd = dup(child.pidfd)
            if pidfd >= 0 {
                let src = DispatchSource.makeReadSource(fileDescriptor: pidfd, queue: queue)
                src.setEventHandler { [self] in
                    src.cancel()
                    self.exited = true
                    // The group may hold our pipes open after the leader ends (the plugin under `docker`).
                    self.child.signalGroup(SIGKILL)
                    self.finishIfDone()
                }
                src.setCancelHandler { close(pidfd) }
                sources.append(src)
                src.resume()
            } else {
                exited = true
            }
        }
    }

    private func drain(_ fd: Int32, _ stream: Stream, _ src: DispatchSourceRead) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n > 0 {
                emitLines(stream, buf[0..<n])
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            // EOF or error: the stream is over.
            if let rest = partial[stream], !rest.isEmpty { onLine(LineFollower.clean(rest[...]), stream) }
            partial[stream] = nil
            src.cancel()
            openStreams -= 1
            finishIfDone()
            return
        }
    }

    private func emitLines(_ stream: Stream, _ bytes: ArraySlice<UInt8>) {
        var buf = partial[stream, default: []]
        buf += bytes
        var start = 0
        for i in buf.indices where buf[i] == 10 {
            onLine(LineFollower.clean(buf[start..<i]), stream)
            start = i + 1
        }
        buf.removeFirst(start)
        if buf.count > 256 * 1024 { onLine(LineFollower.clean(buf[...]), stream); buf = [] }
        partial[stream] = buf
    }

    /// Drops a trailing CR and ANSI control sequences (Compose writes ESC[2K before log lines even with --ansi never).
    static func clean(_ bytes: ArraySlice<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == 0x1B, i + 1 < bytes.endIndex, bytes[i + 1] == UInt8(ascii: "[") {
                var j = i + 2
                while j < bytes.endIndex, !(0x40...0x7E).contains(bytes[j]) { j += 1 }
                i = j + 1
                continue
            }
            out.append(b)
            i += 1
        }
        if out.last == 13 { out.removeLast() }
        return String(decoding: out, as: UTF8.self)
    }

    private func finishIfDone() {
        guard exited, openStreams == 0, !finished else { return }
        finished = true
        let status = child.wait(deadline: .after(seconds: 5)) ?? .exited(-1)
        result.withValue { $0 = status }
        onExit(status)
        done.leave()
    }

    /// Ends the child (SIGTERM to its group, then SIGKILL) and waits for `onExit` to have run.
    public func stop(graceMilliseconds: Int = 2000) {
        if result.current == nil {
            child.signalGroup(SIGTERM)
            if !waitForExit(deadline: .after(milliseconds: graceMilliseconds)) {
                child.signalGroup(SIGKILL)
                _ = waitForExit(deadline: .after(seconds: 10))
            }
        }
    }

    /// Waits until the child ended and its output was delivered; false at the deadline.
    @discardableResult
    public func waitForExit(deadline: Deadline) -> Bool {
        done.wait(timeout: .now() + .milliseconds(Int(deadline.remainingMilliseconds))) == .success
    }

    public var exitStatus: ExitStatus? { result.current }
}

/// Reads the RFC 3339 timestamp `docker logs --timestamps` puts before each line
/// ("2026-11-22T21:10:42.437961947Z text") into wall-clock seconds and the rest of the line.
public func splitDockerTimestamp(_ line: String) -> (time: Double, text: String)? {
    let u = Array(line.utf8)
    func num(_ a: Int, _ n: Int) -> Int? {
        guard a + n <= u.count else { return nil }
        var v = 0
        for i in a..<a + n {
            guard u[i] >= 48 && u[i] <= 57 else { return nil }
            v = v * 10 + Int(u[i] - 48)
        }
        return v
    }
    guard u.count >= 20, u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58,
          let year = num(0, 4), let month = num(5, 2), let day = num(8, 2),
          let hour = num(11, 2), let minute = num(14, 2), let second = num(17, 2),
          (1...12).contains(month), (1...31).contains(day) else { return nil }
    var i = 19
    var fraction = 0.0
    if i < u.count && u[i] == 46 {
        i += 1
        var scale = 0.1
        while i < u.count, u[i] >= 48, u[i] <= 57 { fraction += Double(u[i] - 48) * scale; scale /= 10; i += 1 }
    }
    var offset = 0
    if i < u.count && u[i] == 90 {
        i += 1
    } else if i + 6 <= u.count, u[i] == 43 || u[i] == 45, let oh = num(i + 1, 2), u[i + 3] == 58, let om = num(i + 4, 2) {
        offset = (oh * 3600 + om * 60) * (u[i] == 45 ? -1 : 1)
        i += 6
    } else {
        return nil
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146097 + doe - 719468
    let seconds = Double(days * 86400 + hour * 3600 + minute * 60 + second - offset) + fraction
    if i < u.count && u[i] == 32 { i += 1 }
    return (seconds, String(decoding: u[i...], as: UTF8.self))
}

extension ComposeCLI {
    static func firstLines(_ text: String, _ n: Int) -> String {
        text.split(separator: "\n").prefix(n).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
    static func lastLines(_ text: String, _ n: Int) -> String {
        text.split(separator: "\n").suffix(n).joined(separator: "\n")
    }
}
