import SageSystem
import SageWire

/// A one-request HTTP/1.1 client over a raw socket: GET with Host and Connection: close.
/// Throws `SystemError` for socket failures and `WireError` when the peer does not speak HTTP
/// (or closes before the response is complete: code `.unexpected`).
public enum HTTPClient {
    public static func get(host: String, port: Int, path: String, limits: HTTPLimits = .standard,
                           deadline: Deadline) throws -> HTTPResponse {
        let socket = try Socket.connect(host: host, port: port, deadline: deadline)
        defer { socket.close() }
        try socket.write(request(host: host, port: port, path: path), deadline: deadline)
        var parser = HTTPResponseParser(limits: limits)
        while true {
            let chunk: [UInt8]
            do {
                chunk = try socket.read(maximum: 65536, deadline: deadline)
            } catch let e as SystemError where e.code == .timedOut {
                let what = parser.receivedByteCount == 0 ? "no response" : "an incomplete response (\(parser.receivedByteCount) bytes)"
                throw SystemError(.timedOut, "http \(formatHostPort(host, port)): \(what) before the deadline", errno: e.errno)
            }
            if chunk.isEmpty { return try parser.receivedEndOfStream() }
            if let response = try parser.received(chunk) { return response }
        }
    }

    /// The request bytes (exposed for tests).
    public static func request(host: String, port: Int, path: String) -> [UInt8] {
        let target = path.isEmpty ? "/" : path
        let hostHeader = port == 80 ? (host.contains(":") ? "[\(host)]" : host) : formatHostPort(host, port)
        return Array("GET \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: sagedev\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8)
    }
}

/// Ready on a 2xx answer to GET path; 5xx, other statuses and silence mean not yet; a peer that
/// does not speak HTTP is fatal.
public struct HTTPProbe: Probe {
    public let host: String
    public let port: Int
    public let path: String

    public init(host: String, port: Int, path: String) {
        self.host = host; self.port = port; self.path = path.isEmpty ? "/" : path
    }

    public var target: String { "http://\(formatHostPort(host, port))\(path)" }

    public func check(deadline: Deadline) -> ProbeOutcome {
        do {
            let response = try HTTPClient.get(host: host, port: port, path: path, limits: .probe, deadline: deadline)
            let status = "HTTP \(response.statusLine)"
            if response.isSuccess { return .ready(status) }
            if response.status >= 500 { return .notReady("\(target) answered \(status)") }
            return .notReady("\(target) answered \(status), expected 2xx")
        } catch let e as WireError where e.code == .unexpected {
            return .notReady("\(target): \(e.message)")
        } catch let e as WireError {
            return .fatal("\(target): \(e.message); is another kind of server on port \(port)?")
        } catch let e as SystemError {
            switch e.code {
            case .connectionRefused: return .notReady("\(target): connection refused (not listening yet)")
            case .timedOut: return .notReady(e.message.hasPrefix("http") ? e.message : "\(target): no answer before the deadline")
            default: return .notReady("\(target): \(e.message)")
            }
        } catch {
            return .notReady("\(target): \(error)")
        }
    }
}
