import Foundation
import SageCore
import SageSystem

struct InstancesCommand: Command {
    static let name = "instances"
    static let summary = "List this user's sagedev instances: directory, branch, slot, ports, state and daemon pid."
    static let options = [OptionSpec("--json", help: "Print one JSON object (stable schema, v1).")]
    static let discussion = "Every checkout that ran 'sagedev up' is listed until its directory is removed. States: running (its daemon runs), starting (an 'up' is bringing it up), orphaned (its daemon is gone but something listens on its ports), stopped (its slot is free; the checkout gets it back while no other takes it). The list lives in $XDG_STATE_HOME/sagedev/instances.json (default ~/.local/state/sagedev/)."
    let json: Bool

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        json = p.has("--json")
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let store = InstanceStore.forUser(environment: context.environment)
        let entries = InstanceClaims.list(store: store)
        let out = context.output
        if json {
            let list: [[String: Any]] = entries.map { e in
                var o: [String: Any] = ["directory": e.record.directory, "project": e.record.project, "slot": e.record.slot,
                                        "stride": e.record.stride, "ports": e.record.ports, "state": e.state.rawValue]
                if let b = GitCheckout.branch(of: e.record.directory) { o["branch"] = b }
                if let r = e.record.runtime { o["runtime"] = r }
                if e.state == .running, let d = e.record.daemon { o["daemonPid"] = Int(d.pid) }
                return o
            }
            let data = try JSONSerialization.data(withJSONObject: ["v": 1, "registry": store.file, "instances": list],
                                                  options: [.sortedKeys, .withoutEscapingSlashes])
            out.line(String(decoding: data, as: UTF8.self))
            return ExitCode.success
        }
        guard !entries.isEmpty else {
            out.line("no sagedev instances yet (\(store.file) lists each checkout once it ran 'sagedev up')")
            return ExitCode.success
        }
        var rows = [["DIRECTORY", "BRANCH", "SLOT", "PORTS", "STATE", "PID"]]
        for e in entries {
            let ports = e.record.ports.sorted { $0.value < $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            rows.append([e.record.directory, GitCheckout.branch(of: e.record.directory) ?? "-", String(e.record.slot), ports,
                         e.state.rawValue, e.state == .running ? e.record.daemon.map { String($0.pid) } ?? "-" : "-"])
        }
        let widths = (0..<rows[0].count).map { i in rows.map { $0[i].count }.max() ?? 0 }
        for (n, r) in rows.enumerated() {
            var line = ""
            for (i, cell) in r.enumerated() {
                var c = i == r.count - 1 ? cell : cell.padding(widths[i] + 1)
                if n > 0 && i == 4 { c = out.paint(c, cell == "running" ? .green : (cell == "stopped" ? .dim : .yellow)) }
                if n == 0 { c = out.paint(c, .bold) }
                line += c + " "
            }
            out.line(String(line.dropLast()))
        }
        return ExitCode.success
    }
}
