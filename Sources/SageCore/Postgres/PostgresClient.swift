import SageSystem
import SageWire

/// Where and as whom to connect. With `unixSocketDirectory` set, the connection goes to
/// `<dir>/.s.PGSQL.<port>` instead of TCP (host is then only used in messages).
public struct PostgresConnectOptions: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var unixSocketDirectory: String?
    public var user: String
    /// Empty means none: a server that asks for one gets a clear error naming POSTGRES_PASSWORD.
    public var password: String
    public var database: String
    public var applicationName: String

    public init(host: String = "127.0.0.1", port: Int = 5432, unixSocketDirectory: String? = nil, user: String,
                password: String, database: String, applicationName: String = "sagedev") {
        self.host = host; self.port = port; self.unixSocketDirectory = unixSocketDirectory; self.user = user
        self.password = password; self.database = database; self.applicationName = applicationName
    }

    /// "127.0.0.1:5432" or "/run/pg/.s.PGSQL.5432": where the connection goes, for messages.
    public var endpoint: String {
        if let dir = unixSocketDirectory { return "\(dir)/.s.PGSQL.\(port)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// One statement's result: column names, rows in text form (nil is NULL), and the command tag.
public struct PostgresResult: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[String?]]
    public var commandTag: String

    public init(columns: [String], rows: [[String?]], commandTag: String) {
        self.columns = columns; self.rows = rows; self.commandTag = commandTag
    }
}

/// The one error type of the PostgreSQL client. `kind` says which way it failed; for errors the server sent,
/// `diagnostic` holds every ErrorResponse field and `sqlState`, `detail`, `hint`, `position`, `where` read from it.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// Could not connect, or the connection broke (refused, reset, closed by the server).
        case connection
        /// The server refused the credentials (SQLSTATE class 28) or the client would not complete authentication
        /// (no password configured, an unsupported method, a wrong SCRAM server signature).
        case authentication
        /// The server reported an error (ErrorResponse): a failed statement, a missing database, a server starting up.
        case server
        /// The peer broke the protocol or is not PostgreSQL at all.
        case `protocol`
        /// The deadline passed before the server answered.
        case timeout
    }

    public var kind: Kind
    /// What failed, for a person: the server's own message for server errors.
    public var message: String
    /// "127.0.0.1:5432" or the socket path.
    public var endpoint: String
    /// Every field of the server's ErrorResponse, when there was one.
    public var diagnostic: PostgresDiagnostic?
    /// The socket-level error, when one caused this (kept with its errno).
    public var systemError: SystemError?

    public init(kind: Kind, message: String, endpoint: String, diagnostic: PostgresDiagnostic? = nil, systemError: SystemError? = nil) {
        self.kind = kind; self.message = message; self.endpoint = endpoint
        self.diagnostic = diagnostic; self.systemError = systemError
    }

    public var sqlState: String? { diagnostic?.sqlState }
    public var detail: String? { diagnostic?.detail }
    public var hint: String? { diagnostic?.hint }
    public var position: Int? { diagnostic?.position }
    public var `where`: String? { diagnostic?.where }
    public var severity: String? { diagnostic?.severity }
    public var errno: Int32 { systemError?.errno ?? 0 }

    public var description: String {
        guard let d = diagnostic else { return "PostgreSQL at \(endpoint): \(message)" }
        return "PostgreSQL at \(endpoint): \(d.description)"
    }
}

/// A blocking PostgreSQL connection over a socket with deadlines: the I/O shell around
/// `PostgresConnectionStateMachine`. One owner at a time; not for sharing between threads at once.
public final class PostgresConnection: @unchecked Sendable {
    public let options: PostgresConnectOptions
    private var socket: Socket?
    private var machine: PostgresConnectionStateMachine
    private var reader = PostgresMessageReader()

    /// Server parameters reported at startup and kept current (server_version, server_encoding, TimeZone, …).
    public var parameters: [String: String] { machine.parameters }
    /// NoticeResponses received so far (warnings, RAISE NOTICE). `takeNotices()` empties the list.
    public var notices: [PostgresDiagnostic] { machine.notices }
    public var processID: Int32? { machine.backendProcessID }
    public var isOpen: Bool { socket != nil && !machine.isClosed }
    /// Open, ready for a query, outside any transaction, and with nothing unread from the server: safe to hand to
    /// the next user as if it were new.
    public var isIdle: Bool {
        guard let socket, machine.isReadyForQuery, machine.transactionStatus == .idle else { return false }
        return socket.isQuiet
    }

    private init(options: PostgresConnectOptions, socket: Socket) {
        self.options = options
        self.socket = socket
        machine = PostgresConnectionStateMachine(configuration: .init(
            user: options.user, database: options.database, password: options.password, applicationName: options.applicationName,
            scramSaltedPassword: { SCRAMSaltedPasswordCache.saltedPassword(password: $0, salt: $1, iterations: $2) }))
    }

    deinit { socket?.close() }

    /// Connects, authenticates and waits for ReadyForQuery, all before `deadline`.
    public static func connect(_ options: PostgresConnectOptions, deadline: Deadline) throws -> PostgresConnection {
        let socket: Socket
        do {
            if let dir = options.unixSocketDirectory {
                socket = try Socket.connect(unixPath: "\(dir)/.s.PGSQL.\(options.port)", deadline: deadline)
            } else {
                socket = try Socket.connect(host: options.host, port: options.port, deadline: deadline)
            }
        } catch let e as SystemError {
            throw PostgresConnection.error(from: e, endpoint: options.endpoint, doing: "connect")
        }
        let connection = PostgresConnection(options: options, socket: socket)
        do {
            let first = connection.machine.start()
            switch try connection.run(first, deadline: deadline) {
            case .connected: return connection
            case let other: throw connection.unexpectedOutcome(other)
            }
        } catch {
            connection.dropSocket()
            throw error
        }
    }

    /// Runs one or more statements with the simple query protocol and returns one result per statement.
    /// A failing statement throws a `.server` error with every ErrorResponse field; the connection stays usable.
    public func simpleQuery(_ sql: String, deadline: Deadline) throws -> [PostgresResult] {
        guard socket != nil, machine.isReadyForQuery else {
            throw PostgresError(kind: .connection, message: "the connection is closed; connect again", endpoint: options.endpoint)
        }
        let outcome: Outcome
        do {
            outcome = try run(machine.query(sql), deadline: deadline)
        } catch {
            // A timeout or broken stream leaves the protocol at an unknown point: this connection is done.
            dropSocket()
            throw error
        }
        switch outcome {
        case .queryCompleted(let results):
            return results.map(PostgresConnection.result)
        case .queryFailed(let diagnostic, _):
            throw PostgresConnection.error(from: diagnostic, endpoint: options.endpoint)
        case let other:
            dropSocket()
            throw unexpectedOutcome(other)
        }
    }

    /// Removes and returns the notices collected so far.
    public func takeNotices() -> [PostgresDiagnostic] { machine.takeNotices() }

    /// Sends Terminate when the connection is idle (without waiting more than 100 ms), then closes the socket.
    public func close() {
        guard let socket else { return }
        if case .sendAndClose(let bytes) = machine.terminate(), !bytes.isEmpty {
            try? socket.write(bytes, deadline: .after(milliseconds: 100))
        }
        dropSocket()
    }

    // MARK: the loop that carries out the machine's actions

    private enum Outcome {
        case connected
        case queryCompleted([PostgresQueryResult])
        case queryFailed(PostgresDiagnostic, [PostgresQueryResult])
    }

    private func run(_ first: PostgresConnectionStateMachine.Action, deadline: Deadline) throws -> Outcome {
        var action = first
        while true {
            switch action {
            case .send(let bytes):
                try write(bytes, deadline: deadline)
                action = try nextAction(deadline: deadline)
            case .wait:
                action = try nextAction(deadline: deadline)
            case .connected:
                return .connected
            case .queryCompleted(let results):
                return .queryCompleted(results)
            case .queryFailed(let diagnostic, let completed):
                return .queryFailed(diagnostic, completed)
            case .sendAndClose(let bytes):
                if !bytes.isEmpty { try? write(bytes, deadline: deadline) }
                dropSocket()
                throw PostgresError(kind: .connection, message: "the connection was closed", endpoint: options.endpoint)
            case .close(let failure):
                dropSocket()
                throw PostgresConnection.error(from: failure, endpoint: options.endpoint)
            }
        }
    }

    /// Reads until the next whole message and hands it to the machine.
    private func nextAction(deadline: Deadline) throws -> PostgresConnectionStateMachine.Action {
        while true {
            do {
                if let message = try reader.next() { return machine.received(message) }
            } catch let e as WireError {
                throw PostgresError(kind: e.code == .authentication ? .authentication : .protocol, message: e.message, endpoint: options.endpoint)
            }
            guard let socket else {
                throw PostgresError(kind: .connection, message: "the connection is closed", endpoint: options.endpoint)
            }
            let bytes: [UInt8]
            do {
                bytes = try socket.read(maximum: 65536, deadline: deadline)
            } catch let e as SystemError {
                throw PostgresConnection.error(from: e, endpoint: options.endpoint, doing: "read", pending: reader.partialMessageDescription)
            }
            if bytes.isEmpty {
                if let partial = reader.partialMessageDescription {
                    throw PostgresError(kind: .connection, message: "the server closed the connection in the middle of a message (\(partial)); it crashed, or it is not PostgreSQL", endpoint: options.endpoint)
                }
                return machine.receivedEndOfStream()
            }
            reader.append(bytes)
        }
    }

    private func write(_ bytes: [UInt8], deadline: Deadline) throws {
        guard let socket else {
            throw PostgresError(kind: .connection, message: "the connection is closed", endpoint: options.endpoint)
        }
        do {
            try socket.write(bytes, deadline: deadline)
        } catch let e as SystemError {
            throw PostgresConnection.error(from: e, endpoint: options.endpoint, doing: "write")
        }
    }

    private func dropSocket() {
        socket?.close()
        socket = nil
    }

    private func unexpectedOutcome(_ outcome: Outcome) -> PostgresError {
        dropSocket()
        return PostgresError(kind: .protocol, message: "the conversation ended in an unexpected state (\(outcome))", endpoint: options.endpoint)
    }

    // MARK: mapping to PostgresError

    static func result(_ r: PostgresQueryResult) -> PostgresResult {
        PostgresResult(columns: r.columns.map(\.name), rows: r.rows, commandTag: r.commandTag)
    }

    static func error(from d: PostgresDiagnostic, endpoint: String) -> PostgresError {
        let kind: PostgresError.Kind = (d.sqlState ?? "").hasPrefix("28") ? .authentication : .server
        return PostgresError(kind: kind, message: d.message, endpoint: endpoint, diagnostic: d)
    }

    static func error(from failure: PostgresConnectionFailure, endpoint: String) -> PostgresError {
        switch failure {
        case .server(let d):
            return error(from: d, endpoint: endpoint)
        case .client(let e):
            let kind: PostgresError.Kind = (e.code == .authentication || e.code == .unsupported) ? .authentication : .protocol
            return PostgresError(kind: kind, message: e.message, endpoint: endpoint)
        case .closedByServer(let why):
            return PostgresError(kind: .connection, message: why, endpoint: endpoint)
        }
    }

    static func error(from e: SystemError, endpoint: String, doing: String, pending: String? = nil) -> PostgresError {
        if e.code == .timedOut {
            var message = "no answer before the deadline"
            if let pending { message += " (stalled after \(pending))" }
            return PostgresError(kind: .timeout, message: message, endpoint: endpoint, systemError: e)
        }
        let message: String
        switch e.code {
        case .connectionRefused: message = "connection refused: nothing listens there (yet)"
        case .connectionReset: message = "the connection was reset by the server"
        case .notFound: message = "no socket at \(endpoint): the server is not running (yet) or uses another directory or port"
        default: message = e.message
        }
        return PostgresError(kind: .connection, message: message, endpoint: endpoint, systemError: e)
    }
}

/// SCRAM's salted password (4096 PBKDF2 rounds by default) for recent (password, salt, iterations) triples,
/// shared by every connection in the process so that repeated probes skip the derivation. The key holds
/// the password's SHA-256, not the password.
public enum SCRAMSaltedPasswordCache {
    struct Key: Hashable {
        var passwordDigest: [UInt8]
        var salt: [UInt8]
        var iterations: Int
    }
    struct Store {
        var entries: [Key: [UInt8]] = [:]
        var order: [Key] = []
        var hits = 0
        var misses = 0
    }
    static let capacity = 16
    private static let store = Locked(Store())

    public static func saltedPassword(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = Key(passwordDigest: SHA256.hash(password), salt: salt, iterations: iterations)
        if let cached = store.withValue({ s -> [UInt8]? in
            guard let v = s.entries[key] else { return nil }
            s.hits += 1
            return v
        }) { return cached }
        // Derived outside the lock: another thread may do the same work once, which is harmless.
        let derived = PBKDF2.sha256(password: password, salt: salt, iterations: iterations)
        store.withValue { s in
            s.misses += 1
            if s.entries[key] == nil {
                s.entries[key] = derived
                s.order.append(key)
                if s.order.count > capacity { s.entries[s.order.removeFirst()] = nil }
            }
        }
        return derived
    }

    /// The salt and iteration count of the last derivation for `password`, if any is cached.
    public static func lastParameters(forPassword password: String) -> SCRAMSaltHint.Parameters? {
        let digest = SHA256.hash(Array(password.utf8))
        return store.withValue { s in
            s.order.last { $0.passwordDigest == digest }.map { SCRAMSaltHint.Parameters(salt: $0.salt, iterations: $0.iterations) }
        }
    }

    /// How many derivations were served from the cache and how many were computed.
    public static var statistics: (hits: Int, misses: Int) { store.withValue { ($0.hits, $0.misses) } }

    public static func removeAll() { store.withValue { $0 = Store() } }
}
