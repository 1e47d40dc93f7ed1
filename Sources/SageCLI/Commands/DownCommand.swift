import SageCore
import SageSystem

struct DownCommand: Command {
    static let name = "down"
    static let summary = "Stop every service and the daemon. Data is kept unless --volumes."
    static let options = [
        OptionSpec("--volumes", help: "Also delete the data (PostgreSQL and Valkey). Asks first unless --yes."),
        OptionSpec("--yes", short: "y", help: "Do not ask for confirmation."),
    ]
    let volumes: Bool
    let yes: Bool

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        volumes = p.has("--volumes"); yes = p.has("--yes")
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        if volumes && !yes {
            guard context.stdinIsTTY else {
                throw CLIError.usage("--volumes deletes the database and cache data; with no terminal to ask on, add --yes to confirm")
            }
            context.output.write("Delete all PostgreSQL and Valkey data in \(paths.data)? [y/N] ")
            guard let answer = context.readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                context.output.line("Nothing was deleted.")
                return ExitCode.failure
            }
        }
        guard let client = try Project.connectOrAdopt(context, paths) else {
            if volumes {
                let config = try loadPlacedConfig(context, paths)
                try Stack.makeRuntime(config: config, paths: paths, environment: context.environment, logs: LogStore(directory: paths.logs)).removeData(config: config)
                context.output.line("No daemon was running; data deleted.")
            } else {
                context.output.line("No daemon runs for \(paths.root); nothing to stop.")
            }
            return ExitCode.success
        }
        let result: DownResponse
        do {
            result = try client.send(DownRequest(volumes: volumes), deadline: .after(seconds: 120))
        } catch let f as DaemonClient.Failure where f.code == "version-mismatch" && !volumes {
            // A daemon of another sagedev version cannot read our request, but it stops its stack on SIGTERM.
            guard let pid = DaemonLauncher.isRunning(paths), Signals.send(Signals.terminate, toProcess: pid) else { throw f }
            context.output.error("sagedev down: the daemon (pid \(pid)) runs another sagedev version; stopping it with SIGTERM")
            guard waitForDaemonExit(paths, seconds: 120) else {
                throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) is still running 120 s after SIGTERM; see \(paths.daemonLog)")
            }
            context.output.line("Stopped the stack and the daemon. Data kept.")
            return ExitCode.success
        }
        // Wait for the daemon to let go of its lock, so that a following `up` starts a fresh one.
        _ = waitForDaemonExit(paths, seconds: 10)
        if let err = result.error { context.output.error("sagedev down: stopped, but deleting data failed: \(err)"); return ExitCode.failure }
        let kept = result.runtime == "compose" ? "in the project's named Docker volumes" : "in \(paths.data)"
        context.output.line("Stopped \(result.stopped.map(\.rawValue).joined(separator: ", ")) and the daemon." + (volumes ? " Data deleted." : " Data kept \(kept)."))
        return ExitCode.success
    }

    private func waitForDaemonExit(_ paths: ProjectPaths, seconds: Double) -> Bool {
        let deadline = Deadline.after(seconds: seconds)
        while DaemonLauncher.isRunning(paths) != nil {
            if deadline.hasPassed { return false }
            _ = try? Socket.connect(unixPath: "/nonexistent", deadline: .after(milliseconds: 20))
        }
        return true
    }
}
