import SageCore

/// Everything `status --watch` shows, as a value: the renderer is a pure function of it.
struct WatchModel: Sendable, Equatable {
    var report: StatusReport?
    /// CPU % and resident bytes per service, from /proc (the service's main process).
    var usage: [ServiceID: (cpu: Double?, rss: Int?)] = [:]
    var selected = 0
    var showLog = true
    /// The newest log lines per service.
    var logs: [ServiceID: [String]] = [:]
    /// The newest stack events ("12:01:02 backend crashed: …"), newest last.
    var events: [String] = []
    var rows = 30
    var columns = 120
    var colour = false
    /// A note for the person (the daemon went away, a restart was asked for).
    var note: String?
    /// Wall-clock seconds, for uptimes.
    var now: Double = 0

    static func == (a: WatchModel, b: WatchModel) -> Bool {
        a.report == b.report && a.selected == b.selected && a.showLog == b.showLog && a.logs == b.logs && a.events == b.events
            && a.rows == b.rows && a.columns == b.columns && a.colour == b.colour && a.note == b.note
            && a.usage.keys.sorted() == b.usage.keys.sorted()
            && a.usage.allSatisfy { k, v in b.usage[k]?.cpu == v.cpu && b.usage[k]?.rss == v.rss }
    }

    var services: [ServiceStatus] { report?.services ?? [] }
    var selectedService: ServiceStatus? { services.indices.contains(selected) ? services[selected] : nil }
}

enum WatchView {
    static let help = "↑/↓ or j/k select · r restart · l log · q quit"

    /// The screen: exactly `rows` lines, none wider than `columns` characters (colour codes aside).
    static func render(_ m: WatchModel) -> [String] {
        var lines: [(String, Output.Colour?)] = []
        let r = m.report
        let head = r.map { "sagedev · \($0.project) · runtime \($0.runtime) · daemon pid \($0.daemon.pid) · " + ($0.healthy ? "all healthy" : "not all healthy") }
            ?? "sagedev · no daemon answers"
        lines.append((head, r?.healthy == true ? .green : .yellow))
        lines.append(("", nil))
        let header = ["", "SERVICE", "STATE", "HEALTH", "UPTIME", "RESTARTS", "CPU", "RSS", "LAST RELOAD"]
        var table = [header]
        for (i, s) in m.services.enumerated() {
            let health = s.health.map { "\($0.outcome.rawValue) \(format(ms: $0.latencyMs))" } ?? "-"
            let u = m.usage[s.name]
            let reload = s.reload.map { "\($0.outcome) \(($0.file as String).split(separator: "/").last.map(String.init) ?? $0.file)" + ($0.healthyMs.map { " \($0) ms" } ?? "") } ?? "-"
            table.append([i == m.selected ? ">" : " ", s.name.rawValue, s.state.rawValue, health, s.uptimeSeconds.map(duration) ?? "-",
                          String(s.restarts), u?.cpu.map { String(format: "%.1f%%", $0) } ?? "-", u?.rss.map(bytes) ?? "-", reload])
        }
        let widths = header.indices.map { c in table.map { $0[c].count }.max() ?? 0 }
        for (n, row) in table.enumerated() {
            let text = row.enumerated().map { c, cell in
                c == row.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[c] - cell.count))
            }.joined(separator: " ")
            let state = n == 0 ? nil : m.services[n - 1].state
            lines.append((text, n == 0 ? .bold : (state == .healthy ? .green : (state == .stopped ? .dim : .red))))
        }
        for s in m.services {
            if let c = s.connections {
                lines.append(("\(s.name.rawValue): \(c.used)/\(c.max) connections in use" + (c.warning ? " — at or over 80% of max_connections" : ""), c.warning ? .yellow : nil))
            }
        }
        if let sel = m.selectedService, sel.state != .healthy, !sel.reason.isEmpty { lines.append(("\(sel.name.rawValue): \(sel.reason)", .yellow)) }
        if !m.events.isEmpty {
            lines.append(("", nil))
            for e in m.events.suffix(5) { lines.append((e, .dim)) }
        }
        let footer = [(m.note ?? "", Output.Colour?.some(.yellow)), (help, Output.Colour?.some(.dim))]
        if m.showLog, let sel = m.selectedService {
            lines.append(("", nil))
            lines.append(("── \(sel.name.rawValue) log " + String(repeating: "─", count: max(0, m.columns - sel.name.rawValue.count - 8)), .bold))
            let room = max(0, m.rows - lines.count - footer.count)
            for l in (m.logs[sel.name] ?? []).suffix(room) { lines.append((l, nil)) }
        }
        while lines.count < m.rows - footer.count { lines.append(("", nil)) }
        lines = Array(lines.prefix(max(0, m.rows - footer.count))) + footer
        return lines.prefix(m.rows).map { text, colour in
            let cut = String(text.prefix(m.columns))
            guard m.colour, let colour, !cut.isEmpty else { return cut }
            return "\u{1B}[\(colour.rawValue)m\(cut)\u{1B}[0m"
        }
    }

    static func format(ms: Double) -> String { ms < 10 ? "\((ms * 10).rounded() / 10) ms" : "\(Int(ms.rounded())) ms" }

    static func bytes(_ n: Int) -> String {
        n < 1 << 20 ? "\(n >> 10) KiB" : (n < 1 << 30 ? "\((Double(n) / 1048576 * 10).rounded() / 10) MiB" : "\((Double(n) / 1073741824 * 10).rounded() / 10) GiB")
    }
}
