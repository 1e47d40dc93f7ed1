import SageSystem
import SageWire

/// Ready only when Valkey answers PING with PONG, after AUTH when a password is configured.
public struct ValkeyProbe: Probe {
    public let host: String
    public let port: Int
    public let user: String?
    public let password: String?

    public init(host: String, port: Int, user: String? = nil, password: String?) {
        self.host = host; self.port = port; self.user = user; self.password = password
    }

    public var target: String {
        var userinfo = ""
        if let user, !user.isEmpty { userinfo = TargetURL.percentEncode(user) }
        if password != nil { userinfo += ":****" }
        return "valkey://" + (userinfo.isEmpty ? "" : userinfo + "@") + formatHostPort(host, port)
    }

    private var endpoint: String { formatHostPort(host, port) }

    public func check(deadline: Deadline) -> ProbeOutcome {
        do {
            let connection = try ValkeyConnection.connect(host: host, port: port, limits: .probe, deadline: deadline)
            defer { connection.close() }
            if let password {
                var auth = ["AUTH"]
                if let user, !user.isEmpty { auth.append(user) }
                auth.append(password)
                let reply = try connection.command(auth, deadline: deadline).withoutAttributes
                if reply.errorMessage != nil { return classify(reply, answering: "AUTH") }
                guard case .simpleString("OK") = reply else {
                    return .fatal("valkey \(endpoint) answered AUTH with \(reply.summary) instead of OK: is this a Valkey server?")
                }
            }
            let reply = try connection.command(["PING"], deadline: deadline).withoutAttributes
            switch reply {
            case .simpleString("PONG"): return .ready("PONG")
            case .bulkString(let b) where b == Array("PONG".utf8): return .ready("PONG")
            case .error, .bulkError: return classify(reply, answering: "PING")
            default:
                return .fatal("valkey \(endpoint) answered PING with \(reply.summary) instead of PONG: is this a Valkey server?")
            }
        } catch let e as WireError {
            return .fatal("valkey \(endpoint) broke the RESP protocol: \(e.message); is another kind of server on port \(port)?")
        } catch let e as SystemError {
            return .notReady(Self.describe(e, endpoint: endpoint))
        } catch {
            return .notReady("valkey \(endpoint): \(error)")
        }
    }

    /// Maps an error reply to an outcome: retry while the server starts, stop when retrying cannot help.
    func classify(_ reply: RESPValue, answering command: String) -> ProbeOutcome {
        let message = reply.errorMessage ?? reply.summary
        let who = user.flatMap { $0.isEmpty ? nil : "user \"\($0)\"" } ?? "the default user"
        switch reply.errorCode {
        case "WRONGPASS":
            return .fatal("valkey \(endpoint) rejected the password for \(who) (WRONGPASS): check VALKEY_PASSWORD in .env")
        case "NOAUTH":
            if password == nil {
                return .fatal("valkey \(endpoint) requires a password (NOAUTH) but none is configured: set VALKEY_PASSWORD in .env")
            }
            return .fatal("valkey \(endpoint) still requires authentication after AUTH (NOAUTH): check VALKEY_PASSWORD in .env")
        case "ERR" where message.contains("without any password configured"):
            return .fatal("valkey \(endpoint) has no password set but one is configured: check VALKEY_PASSWORD in .env, or that this is the right server")
        case "NOPERM":
            return .fatal("valkey \(endpoint): \(who) may not run \(command) (NOPERM): check the server's ACL for that user")
        case "LOADING":
            return .notReady("valkey \(endpoint) is loading its dataset into memory (LOADING)")
        case "BUSY":
            return .notReady("valkey \(endpoint) is busy running a script or function (BUSY)")
        case "MASTERDOWN":
            return .notReady("valkey \(endpoint) is a replica whose link to its primary is down (MASTERDOWN)")
        default:
            return .notReady("valkey \(endpoint) answered \(command) with an error: \(message)")
        }
    }

    static func describe(_ e: SystemError, endpoint: String) -> String {
        switch e.code {
        case .connectionRefused: return "valkey \(endpoint): connection refused (not listening yet)"
        case .timedOut: return e.message.hasPrefix("valkey") ? e.message : "valkey \(endpoint): no answer before the deadline"
        default: return e.message.hasPrefix("valkey") ? e.message : "valkey \(endpoint): \(e.message)"
        }
    }
}

/// "127.0.0.1:6379", "[::1]:6379".
func formatHostPort(_ host: String, _ port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}
