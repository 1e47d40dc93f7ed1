import SageSystem
import SageWire

/// A blocking RESP client connection to Valkey (or Redis), for probes and for the few commands
/// sagedev sends itself (PING, FLUSHALL, INFO memory). One owner thread; every call has a deadline.
///
/// Throws `SystemError` for socket failures, `WireError` for protocol violations and failed
/// authentication. Error replies to `command` are returned as values (`RESPValue.error`).
public final class ValkeyConnection: @unchecked Sendable {
    public let host: String
    public let port: Int
    private let socket: Socket
    private var parser: RESPParser

    private init(host: String, port: Int, socket: Socket, limits: RESPLimits) {
        self.host = host; self.port = port; self.socket = socket; self.parser = RESPParser(limits: limits)
    }

    deinit { socket.close() }

    /// Connects and, when a password is given, authenticates (`AUTH password` or `AUTH user password`).
    public static func connect(host: String, port: Int, user: String? = nil, password: String? = nil,
                               limits: RESPLimits = .standard, deadline: Deadline) throws -> ValkeyConnection {
        let socket = try Socket.connect(host: host, port: port, deadline: deadline)
        let connection = ValkeyConnection(host: host, port: port, socket: socket, limits: limits)
        if let password {
            try connection.authenticate(user: user, password: password, deadline: deadline)
        }
        return connection
    }

    /// Nothing unread, from the server or in the parser: the next command's reply is its own.
    public var isIdle: Bool { parser.bufferedByteCount == 0 && socket.isQuiet }

    /// "valkey 127.0.0.1:6379" for messages.
    public var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Sends AUTH; throws `WireError(.authentication)` naming VALKEY_PASSWORD when the server refuses.
    public func authenticate(user: String?, password: String, deadline: Deadline) throws {
        var args = ["AUTH"]
        if let user, !user.isEmpty { args.append(user) }
        args.append(password)
        let reply = try command(args, deadline: deadline)
        if case .simpleString("OK") = reply.withoutAttributes { return }
        guard let message = reply.errorMessage else {
            throw WireError(.unexpected, "valkey \(endpoint) answered AUTH with \(reply.summary) instead of OK")
        }
        let who = user.map { "user \"\($0)\"" } ?? "the default user"
        switch reply.errorCode {
        case "WRONGPASS":
            throw WireError(.authentication, "valkey \(endpoint) rejected the password for \(who) (WRONGPASS): check VALKEY_PASSWORD in .env")
        case "ERR" where message.contains("without any password configured"):
            throw WireError(.authentication, "valkey \(endpoint) has no password set, but one was given: check VALKEY_PASSWORD in .env, or that this is the right server")
        default:
            throw WireError(.authentication, "valkey \(endpoint) refused AUTH for \(who): \(message)")
        }
    }

    /// Sends one command and returns its reply (error replies included). Out-of-band pushes are skipped.
    public func command(_ arguments: [String], deadline: Deadline) throws -> RESPValue {
        try command(bytes: arguments.map { Array($0.utf8) }, deadline: deadline)
    }

    public func command(bytes arguments: [[UInt8]], deadline: Deadline) throws -> RESPValue {
        try socket.write(RESPEncoder.command(bytes: arguments), deadline: deadline)
        return try readReply(deadline: deadline)
    }

    /// The next reply that is not a push message.
    public func readReply(deadline: Deadline) throws -> RESPValue {
        while true {
            if let value = try parser.next() {
                if case .push = value { continue }
                return value
            }
            let chunk: [UInt8]
            do {
                chunk = try socket.read(maximum: 65536, deadline: deadline)
            } catch let e as SystemError where e.code == .timedOut {
                let what = parser.bufferedByteCount == 0 ? "no reply" : "only \(parser.bufferedByteCount) bytes of a reply"
                throw SystemError(.timedOut, "valkey \(endpoint): \(what) before the deadline", errno: e.errno)
            }
            if chunk.isEmpty {
                let what = parser.bufferedByteCount == 0
                    ? "closed the connection without replying"
                    : "closed the connection in the middle of a reply (after \(parser.bufferedByteCount) bytes)"
                throw SystemError(.connectionReset, "valkey \(endpoint) \(what)")
            }
            parser.append(chunk)
        }
    }

    public func close() { socket.close() }
}
