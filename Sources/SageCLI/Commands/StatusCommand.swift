import Foundation
import SageCore
import SageSystem

struct StatusCommand: Command {
    static let name = "status"
    static let summary = "Show each service's state, health, URL, pid, uptime and restarts."
    static let options = [OptionSpec("--json", help: "Print the daemon's status as one JSON object (stable schema, v1).")]
    static let discussion = "Exit 0 when all services are healthy, 1 when not, 3 when no daemon runs."
    let json: Bool

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        json = p.has("--json")
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        guard let client = try Project.connectOrAdopt(context, paths) else {
            if json { context.output.line("{\"v\":1,\"running\":false,\"directory\":\(jsonString(paths.root))}") }
            throw Project.noDaemon(paths)
        }
        let status = try client.request("status", deadline: .after(seconds: 10))
        let healthy = status["healthy"] as? Bool ?? false
        if json {
            var s = status; s["v"] = 1; s["running"] = true
            let data = try JSONSerialization.data(withJSONObject: s, options: [.sortedKeys, .withoutEscapingSlashes])
            context.output.line(String(decoding: data, as: UTF8.self))
        } else {
            printTable(context.output, status)
        }
        return healthy ? ExitCode.success : ExitCode.failure
    }

    func printTable(_ out: Output, _ status: [String: Any]) {
        let daemon = status["daemon"] as? [String: Any] ?? [:]
        out.line("project \(status["project"] as? String ?? "?") · runtime \(status["runtime"] as? String ?? "?") · daemon pid \(daemon["pid"] as? Int ?? 0), up \(duration(daemon["uptimeSeconds"] as? Double ?? 0))")
        if let why = status["runtimeReason"] as? String, !why.isEmpty { out.line(out.paint("runtime \(status["runtime"] as? String ?? "?") because \(why)", .dim)) }
        var rows = [["SERVICE", "STATE", "HEALTH", "URL", "PID", "UPTIME", "RESTARTS"]]
        var notes: [String] = []
        for s in status["services"] as? [[String: Any]] ?? [] {
            let name = s["name"] as? String ?? "?"
            let health = s["health"] as? [String: Any]
            let latency = (health?["latencyMs"] as? Double).map { String(format: "%.1f ms", $0) } ?? "-"
            let pid = (s["pid"] as? Int).map(String.init) ?? (s["container"] as? String ?? "-")
            rows.append([name, s["state"] as? String ?? "?", health.map { "\($0["outcome"] as? String ?? "?") \(latency)" } ?? "-",
                         s["url"] as? String ?? "", pid, (s["uptimeSeconds"] as? Double).map(duration) ?? "-",
                         String(s["restarts"] as? Int ?? 0)])
            let state = s["state"] as? String ?? ""
            if state != "healthy", let reason = s["reason"] as? String { notes.append("\(name): \(reason)") }
            if let e = s["lastExit"] as? [String: Any] {
                notes.append("\(name): last exit \(e["signalName"] as? String ?? (e["code"].map { "code \($0)" } ?? "?"))")
            }
            if let deps = s["dependencyOutage"] as? [String] { notes.append("\(name): waiting on \(deps.joined(separator: ", ")) (dependency outage)") }
            if let c = s["connections"] as? [String: Any], let used = c["used"] as? Int, let max = c["max"] as? Int {
                let line = "\(name): \(used)/\(max) connections in use"
                notes.append(c["warning"] as? Bool == true ? out.paint(line + " — at or over 80% of max_connections: look for leaked pools or raise max_connections", .yellow) : line)
            }
            if let m = s["memory"] as? [String: Any], let used = m["usedHuman"] as? String { notes.append("\(name): memory used \(used)") }
            if let r = s["reload"] as? [String: Any], let file = r["file"] as? String {
                let took = (r["healthyMs"] as? Int).map { ", healthy \($0) ms after the change" } ?? ""
                notes.append("\(name): \(r["outcome"] as? String ?? "reloading") after a change to \(file) (\(r["action"] as? String ?? "")\(took); \(r["count"] as? Int ?? 0) reload\(r["count"] as? Int == 1 ? "" : "s"))")
            }
            if let tail = s["logTail"] as? [String], !tail.isEmpty {
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
        if let w = status["watch"] as? [String: Any] {
            if let problem = w["problem"] as? String { out.line(out.paint("  watch: \(problem)", .yellow)) }
            else if w["enabled"] as? Bool == false { out.line("  watch: off (--no-watch)") }
        }
    }
}

func duration(_ s: Double) -> String {
    let t = Int(s)
    if t < 60 { return "\(t)s" }
    if t < 3600 { return "\(t / 60)m\(t % 60)s" }
    return "\(t / 3600)h\(t % 3600 / 60)m"
}

func jsonString(_ s: String) -> String {
    (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes]))
        .map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\"\""
}
