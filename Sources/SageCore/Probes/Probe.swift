import SageSystem

/// The three outcomes of one readiness check, each with a reason a person can act on.
public enum ProbeOutcome: Sendable, Equatable {
    /// The service answered as a healthy one would (Postgres: auth + SELECT 1; RESP: PONG; HTTP: 2xx).
    case ready(String)
    /// Not ready yet: try again soon (refused, 57P03, LOADING, HTTP 5xx, no answer in time).
    case notReady(String)
    /// Retrying cannot help (wrong password, missing database, wrong protocol): stop at once.
    case fatal(String)

    public var reason: String {
        switch self { case .ready(let r), .notReady(let r), .fatal(let r): return r }
    }
    public var isReady: Bool { if case .ready = self { return true } else { return false } }
    public var isFatal: Bool { if case .fatal = self { return true } else { return false } }
    /// Nothing accepted the connection (the probes all say "connection refused").
    public var wasRefused: Bool { if case .notReady(let r) = self { return r.contains("connection refused") } else { return false } }
}

/// One check of one target. `check` blocks its thread for at most `deadline`; it never throws:
/// every failure is an outcome.
public protocol Probe: Sendable {
    /// What is probed, with any password redacted ("postgres://sage:****@127.0.0.1:5432/sage").
    var target: String { get }
    func check(deadline: Deadline) -> ProbeOutcome
}
