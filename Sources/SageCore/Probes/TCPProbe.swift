import SageSystem

/// Ready as soon as a TCP connection is accepted.
public struct TCPProbe: Probe {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) { self.host = host; self.port = port }

    public var target: String { "tcp://\(formatHostPort(host, port))" }

    public func check(deadline: Deadline) -> ProbeOutcome {
        do {
            let socket = try Socket.connect(host: host, port: port, deadline: deadline)
            socket.close()
            return .ready("accepted a connection")
        } catch let e as SystemError {
            switch e.code {
            case .connectionRefused: return .notReady("\(target): connection refused (not listening yet)")
            case .timedOut: return .notReady("\(target): no answer to connect before the deadline")
            default: return .notReady("\(target): \(e.message)")
            }
        } catch {
            return .notReady("\(target): \(error)")
        }
    }
}
