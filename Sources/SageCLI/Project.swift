import SageCore
import SageSystem

/// Finds the project a command acts on, and connects to its daemon.
enum Project {
    /// The project directory: SAGEDEV_PROJECT_DIR, else the nearest directory upwards holding a `.env`, else the
    /// working directory.
    static func directory(_ context: CommandContext) -> String {
        if let d = context.environment["SAGEDEV_PROJECT_DIR"], !d.isEmpty {
            return d.hasPrefix("/") ? d : context.workingDirectory + "/" + d
        }
        var dir = context.workingDirectory
        while true {
            if FileDescriptor.exists(dir + "/.env") { return dir }
            guard let slash = dir.lastIndex(of: "/"), dir != "/" else { break }
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
        }
        return context.workingDirectory
    }

    static func paths(_ context: CommandContext) -> ProjectPaths { ProjectPaths(root: directory(context)) }

    /// The project's services in start order (the database job aside), from its `.env`; the standard ones when
    /// `.env` cannot be read.
    static func serviceIDs(_ context: CommandContext, _ paths: ProjectPaths) -> [ServiceID] {
        ConfigLoader.check(projectDirectory: paths.root, environment: context.environment).config?.services.serviceIDs
            ?? ServiceID.standard
    }

    /// Services a dead daemon left behind (pid files whose process, checked by start time, still runs).
    static func orphanedServices(_ context: CommandContext, _ paths: ProjectPaths) -> [ServiceID] {
        serviceIDs(context, paths).filter { PidRecord.read(paths.pidFile($0))?.isAlive == true }
    }

    /// The running daemon; or, when a killed daemon left services running, a new daemon that adopts them.
    static func connectOrAdopt(_ context: CommandContext, _ paths: ProjectPaths) throws -> DaemonClient? {
        if let c = try? DaemonClient.connect(paths) { return c }
        guard !orphanedServices(context, paths).isEmpty else { return nil }
        context.output.error("sagedev: the daemon is gone but its services still run; starting a new daemon to adopt them")
        return try DaemonLauncher.connectOrStart(paths, executable: context.executablePath, environment: context.environment).0
    }

    /// The named services, each checked against the project's services (`known`); all of them when none is named.
    static func services(_ names: [String], known: [ServiceID]) throws -> [ServiceID] {
        guard !names.isEmpty else { return known }
        return try names.map { n in
            let s = ServiceID(n)
            guard known.contains(s) else {
                let hint = Suggestion.closest(to: n, among: known.map(\.rawValue)).map { "; did you mean \($0)?" } ?? ""
                throw CLIError.usage("unknown service '\(n)'\(hint) (services: \(known.map(\.rawValue).joined(separator: ", ")))")
            }
            return s
        }
    }

    static func noDaemon(_ paths: ProjectPaths) -> CLIError {
        CLIError(ExitCode.noDaemon, "no sagedev daemon runs for \(paths.root); start the stack with 'sagedev up'")
    }
}

/// Renders `up`/`restart` progress: on a TTY a live block with one line per service, else plain lines.
final class ProgressView: @unchecked Sendable {
    let output: Output
    let services: [ServiceID]
    private var states: [ServiceID: (state: String, reason: String, ms: Int)] = [:]
    private var drawn = 0
    private let start = monotonicNanoseconds()

    init(output: Output, services: [ServiceID]) { self.output = output; self.services = services }

    func handle(_ event: ControlEvent) {
        switch event {
        case .progress(let p):
            let s = p.service
            guard services.contains(s) else { return }
            let name = p.service.rawValue, state = p.state.rawValue, reason = p.reason, ms = p.elapsedMs
            states[s] = (state, reason, ms)
            if output.isTTY { redraw() } else {
                let detail = state == "healthy" ? "healthy in \(ms) ms" : (reason == state || reason.isEmpty ? state : "\(state): \(reason)")
                output.line("\(name): \(detail)")
            }
        case .step(let step):
            let line = "\(step.step): \(step.message)"
            if output.isTTY { clear(); output.line(line); redraw() } else { output.line(line) }
        default: break
        }
    }

    private func clear() {
        if drawn > 0 { output.write("\u{1B}[\(drawn)A\u{1B}[J"); drawn = 0 }
    }

    private func redraw() {
        clear()
        let total = Int(millisecondsSince(start))
        for s in services {
            let st = states[s]
            let state = st?.state ?? "waiting"
            let colour: Output.Colour = state == "healthy" ? .green : (state == "failed" || state == "crashed" ? .red : .yellow)
            let mark = state == "healthy" ? "✔" : (state == "failed" ? "✘" : "…")
            let time = state == "healthy" ? "\(st?.ms ?? 0) ms" : "\(total / 1000).\(total % 1000 / 100) s"
            output.line("  \(output.paint(mark, colour)) \(s.rawValue.padding(9)) \(output.paint(state.padding(10), colour)) \(time.padding(9)) \(output.paint(String((st?.reason ?? "").prefix(70)), .dim))")
        }
        drawn = services.count
    }
}

/// Prints the URLs of a healthy stack (passwords redacted).
func printURLs(_ output: Output, _ status: StatusReport) {
    for s in status.services { if let url = s.url { output.line("  \(s.name.rawValue.padding(9)) \(url)") } }
}

/// The configuration placed where this checkout last ran (its slot and compose name), for commands that act on
/// it without claiming a slot (`env`, `compose`, `doctor`, `down` without a daemon).
func loadPlacedConfig(_ context: CommandContext, _ paths: ProjectPaths, quiet: Bool = false) throws -> Config {
    let store = InstanceStore.forUser(environment: context.environment)
    return try loadConfig(context, projectDirectory: paths.root, quiet: quiet,
                          placement: Placement.remembered(directory: paths.root, store: store))
}

/// Loads and validates the project's configuration. Every issue is printed (file:line:column: message) before
/// the command exits 78; warnings are printed and loading goes on.
func loadConfig(_ context: CommandContext, projectDirectory: String, quiet: Bool = false,
                placement: Placement = .configured) throws -> Config {
    // One read of .env gives the configuration, its errors and its warnings.
    let report = ConfigLoader.check(projectDirectory: projectDirectory, environment: context.environment, placement: placement)
    guard let config = report.config else {
        let error = ConfigError(report.fileProblem ?? .invalid, issues: report.issues)
        if !quiet { for issue in error.errors { context.output.error(issue.description) } }
        throw CLIError(ExitCode.config, error.message)
    }
    if !quiet { for w in report.warnings { context.output.error("warning: \(w.description)") } }
    return config
}
