import Foundation
import SageCore
import SageSystem

struct StatusCommand: Command {
    static let name = "status"
    static let summary = "Show each service's state, health, URL, pid, uptime and restarts."
    static let options = [
        OptionSpec("--json", help: "Print the daemon's status as one JSON object (stable schema, v1)."),
        OptionSpec("--watch", short: "w", help: "A live view: redraws on every change; keys ↑/↓ or j/k select, r restarts, l toggles the log, q quits."),
    ]
    static let discussion = "Exit 0 when all services are healthy, 1 when not, 3 when no daemon runs. --watch needs a terminal (exit 64 otherwise) and exits 0 on q."
    let json: Bool
    let watch: Bool

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        json = p.has("--json")
        watch = p.has("--watch")
        if json && watch { throw CLIError.usage("--watch and --json do not go together; use --json alone for scripts") }
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        if watch && !context.output.isTTY {
            throw CLIError.usage("--watch needs a terminal on stdout; for scripts and pipes use 'sagedev status --json'")
        }
        guard let client = try Project.connectOrAdopt(context, paths) else {
            if json { context.output.line(StatusDocument(directory: paths.root, report: nil).json) }
            throw Project.noDaemon(paths)
        }
        if watch { return StatusWatch(context: context, paths: paths).run(client) }
        let status = try client.send(StatusRequest(), deadline: .after(seconds: 10))
        if json {
            context.output.line(StatusDocument(directory: paths.root, report: status).json)
        } else {
            printTable(context.output, status)
        }
        return status.healthy ? ExitCode.success : ExitCode.failure
    }

    func printTable(_ out: Output, _ status: StatusReport) {
        out.line("project \(status.project) · runtime \(status.runtime) · daemon pid \(status.daemon.pid), up \(duration(status.daemon.uptimeSeconds))")
        if !status.runtimeReason.isEmpty { out.line(out.paint("runtime \(status.runtime) because \(status.runtimeReason)", .dim)) }
        if let tools = status.toolchain, !tools.isEmpty {
            out.line(out.paint("toolchain: " + tools.map { "\($0.name) from the \($0.from) (\($0.path))" }.joined(separator: "; "), .dim))
        }
        var rows = [["SERVICE", "STATE", "HEALTH", "URL", "PID", "UPTIME", "RESTARTS"]]
        var notes: [String] = []
        for s in status.services {
            let name = s.name.rawValue
            let latency = s.health.map { String(format: "%.1f ms", $0.latencyMs) } ?? "-"
            let pid = s.pid.map(String.init) ?? (s.container ?? "-")
            rows.append([name, s.state.rawValue, s.health.map { "\($0.outcome.rawValue) \(latency)" } ?? "-",
                         s.url ?? "", pid, s.uptimeSeconds.map(duration) ?? "-", String(s.restarts)])
            if s.state != .healthy { notes.append("\(name): \(s.reason)") }
            // The probe's own words: for a refused app, what it listens on instead.
            if s.state != .healthy, s.state != .stopped, let h = s.health, h.outcome != .ready, h.reason != s.reason {
                notes.append("\(name): \(h.reason)")
            }
            if let f = s.framework {
                notes.append(out.paint("\(name): dev server \(f.description)", .dim))
                if let add = f.addYourself, !add.isEmpty {
                    notes.append("\(name): the dev command is a compound shell command, so sagedev adds nothing to it; add \(add.joined(separator: " ")) to the dev server's part")
                }
            }
            if let b = s.build {
                let more = b.errors > 1 ? " (and \(b.errors - 1) more)" : ""
                notes.append(out.paint("\(name): build failed: \(b.error)\(more)\(b.note.isEmpty ? "" : "; " + b.note)", .red))
            }
            if let e = s.lastExit {
                notes.append("\(name): last exit \(e.signalName ?? (e.code.map { "code \($0)" } ?? "?"))")
            }
            if let deps = s.dependencyOutage { notes.append("\(name): waiting on \(deps.map(\.rawValue).joined(separator: ", ")) (dependency outage)") }
            if let c = s.connections {
                let line = "\(name): \(c.used)/\(c.max) connections in use"
                notes.append(c.warning ? out.paint(line + " — at or over 80% of max_connections: look for leaked pools or raise max_connections", .yellow) : line)
            }
            if let m = s.memory { notes.append("\(name): memory used \(m.usedHuman)") }
            if let pool = s.readyCopies {
                var line = "\(name): \(pool.ready) of \(pool.target) ready cop\(pool.target == 1 ? "y" : "ies") of the reset template"
                if let clones = s.clones, clones > 0 { line += "; \(clones) clone\(clones == 1 ? "" : "s")" }
                notes.append(pool.problem.map { out.paint(line + " — " + $0, .yellow) } ?? line)
            }
            if let r = s.reload {
                let took = r.healthyMs.map { ", healthy \($0) ms after the change" } ?? ""
                notes.append("\(name): \(r.outcome) after a change to \(r.file) (\(r.action)\(took); \(r.count) reload\(r.count == 1 ? "" : "s"))")
            }
            if let tail = s.logTail, !tail.isEmpty {
                notes.append("\(name): last log lines:\n" + tail.map { "      " + $0 }.joined(separator: "\n"))
            }
        }
        let widths = (0..<rows[0].count).map { i in rows.map { $0[i].count }.max() ?? 0 }
        for (n, r) in rows.enumerated() {
            var line = ""
            for (i, cell) in r.enumerated() {
                var c = i == r.count - 1 ? cell : cell.padding(widths[i] + 1)
                if n > 0 && i == 1 { c = out.paint(c, cell == "healthy" ? .green : (cell == "stopped" ? .dim : .red)) }
                if n == 0 { c = out.paint(c, .bold) }
                line += c + " "
            }
            out.line(String(line.dropLast()))
        }
        for n in notes { out.line("  " + n) }
        if let problem = status.watch.problem { out.line(out.paint("  watch: \(problem)", .yellow)) }
        else if !status.watch.enabled { out.line("  watch: off (--no-watch)") }
    }
}

func duration(_ s: Double) -> String {
    let t = Int(s)
    if t < 60 { return "\(t)s" }
    if t < 3600 { return "\(t / 60)m\(t % 60)s" }
    return "\(t / 3600)h\(t % 3600 / 60)m"
}
