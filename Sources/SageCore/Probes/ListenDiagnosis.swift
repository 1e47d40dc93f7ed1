import SageSystem

/// What an app's processes listen on when its probe is refused, said so that the person knows what to change:
/// "frontend listens on [::1]:5173, not 127.0.0.1:45173 (FRONTEND_PORT): the dev server ignores PORT and bound
/// ::1; pass --host 127.0.0.1 --port $PORT --strictPort (Vite) or set FRONTEND_PORT=5173".
public enum ListenDiagnosis {
    /// nil when the sockets include the probed address and port (the refusal was a moment's race).
    public static func message(service: String, host: String, port: Int, portKey: String,
                               listening: [ProcFS.ListeningSocket], rule: DevServerRule?) -> String? {
        let expected = "\(bracketed(host)):\(port)"
        guard !listening.isEmpty else {
            return "\(service) listens on no TCP port, not \(expected) (\(portKey)): it may still be starting; its processes hold no listening socket (see 'sagedev logs \(service)')"
        }
        if listening.contains(where: { $0.port == port && PortCheck.overlaps($0.localAddress, host) }) { return nil }
        let shown = listening.prefix(4).map { "\(bracketed($0.localAddress)):\($0.port)" }
        let list = shown.count == 1 ? shown[0] : shown.dropLast().joined(separator: ", ") + " and " + shown.last!
        var why: [String] = []
        let ports = Set(listening.map(\.port))
        if !ports.contains(port) { why.append("ignores PORT") }
        let hostIsV4 = !host.contains(":")
        let addresses = Set(listening.map(\.localAddress))
        if hostIsV4, addresses.allSatisfy({ $0.contains(":") && $0 != "::" }) {
            why.append("bound \(addresses.count == 1 ? addresses.first! : "IPv6 only")")
        } else if !addresses.contains(where: { PortCheck.overlaps($0, host) }) {
            why.append("bound \(addresses.sorted().joined(separator: ", "))")
        }
        let fixRule = rule ?? DevServerRule.vite
        var fix = fixRule.listenFix.replacingAll("{host}", host)
        if ports.count == 1, let other = ports.first, other != port { fix += " or set \(portKey)=\(other)" }
        let reason = why.isEmpty ? "" : "the dev server " + why.joined(separator: " and ") + "; "
        return "\(service) listens on \(list), not \(expected) (\(portKey)): \(reason)\(fix)"
    }

    static func bracketed(_ address: String) -> String { address.contains(":") ? "[\(address)]" : address }
}

/// Reads /proc for the engine when an app's probe is refused, at most every 500 ms per service (the readiness
/// probe may be refused every few ms while a dev server starts), and not in a process group's first 500 ms: a dev
/// server that has not bound yet is starting, and reading every process's descriptors then would only slow it.
public final class ListenInspector: @unchecked Sendable {
    private let lock = Lock()
    private var last: [ServiceID: (at: UInt64, pgid: Int32, message: String?)] = [:]
    private var firstRefused: [ServiceID: (at: UInt64, pgid: Int32)] = [:]
    public var minimumIntervalNanoseconds: UInt64 = 500_000_000
    public var graceNanoseconds: UInt64 = 500_000_000

    public init() {}

    public func diagnose(_ s: ServiceID, processGroup pgid: Int32, config c: Config) -> String? {
        let now = monotonicNanoseconds()
        let inGrace: Bool = lock.locked {
            if let f = firstRefused[s], f.pgid == pgid { return now &- f.at < graceNanoseconds }
            firstRefused[s] = (now, pgid)
            return graceNanoseconds > 0
        }
        if inGrace { return nil }
        if let l = lock.locked({ last[s] }), l.pgid == pgid, now &- l.at < minimumIntervalNanoseconds { return l.message }
        guard let spec = c.services[s], let app = spec.app, let port = spec.port else { return nil }
        let rule = DevServerAdapter.detect(app, projectDirectory: c.projectDirectory).rule
        let host = c.urlHost.hasPrefix("[") ? String(c.urlHost.dropFirst().dropLast()) : c.urlHost
        let m = ListenDiagnosis.message(service: s.rawValue, host: host, port: port, portKey: spec.portKey ?? s.envPrefix + "PORT",
                                        listening: ProcFS.listeningSockets(ofGroup: pgid), rule: rule)
        lock.locked { last[s] = (now, pgid, m) }
        return m
    }
}
