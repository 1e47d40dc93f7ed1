/// One statement's result from a simple query: its columns (empty for statements that return no rows),
/// its rows in text format (nil is NULL), and the command tag ("SELECT 1", "INSERT 0 3", "CREATE TABLE").
public struct PostgresQueryResult: Sendable, Equatable {
    public var columns: [PostgresColumn]
    public var rows: [[String?]]
    public var commandTag: String

    public init(columns: [PostgresColumn], rows: [[String?]], commandTag: String) {
        self.columns = columns; self.rows = rows; self.commandTag = commandTag
    }
}

/// Why a connection cannot go on. The I/O shell closes the socket on any of these.
public enum PostgresConnectionFailure: Sendable, Equatable {
    /// The server refused with an ErrorResponse (wrong password, no such database, starting up, FATAL).
    case server(PostgresDiagnostic)
    /// The client gave up: authentication it cannot or will not complete (`.authentication`, `.unsupported`),
    /// or bytes that break the protocol (`.malformed`, `.unexpected`, `.tooLarge`).
    case client(WireError)
    /// The server closed the connection when it should not have.
    case closedByServer(String)
}

/// The PostgreSQL frontend/backend protocol 3.0 for one connection, without I/O: startup, authentication
/// (trust, cleartext, md5, SCRAM-SHA-256), simple queries with several statements, and termination.
///
/// The I/O shell calls `start()`, writes what `.send` carries and feeds every decoded message to `received(_:)`
/// until an action other than `.send`/`.wait` comes back. After `.connected`, it calls `query(_:)` the same way.
public struct PostgresConnectionStateMachine: Sendable {
    public struct Configuration: Sendable {
        public var user: String
        public var database: String
        /// Empty means none configured: a server asking for one gets a clear error instead of an empty password.
        public var password: String
        public var applicationName: String
        /// For tests: the SCRAM client nonce (random when nil).
        public var scramClientNonce: String?
        /// How SCRAM's salted password is computed; the client shell passes a cached one.
        public var scramSaltedPassword: SCRAMSHA256Client.SaltedPasswordFunction

        public init(user: String, database: String, password: String, applicationName: String = "sagedev",
                    scramClientNonce: String? = nil,
                    scramSaltedPassword: @escaping SCRAMSHA256Client.SaltedPasswordFunction = SCRAMSHA256Client.computeSaltedPassword) {
            self.user = user; self.database = database; self.password = password; self.applicationName = applicationName
            self.scramClientNonce = scramClientNonce; self.scramSaltedPassword = scramSaltedPassword
        }
    }

    public enum Action: Sendable, Equatable {
        /// Write these bytes, then keep reading.
        case send([UInt8])
        /// Read more.
        case wait
        /// Startup is over (ReadyForQuery): the connection takes queries.
        case connected
        /// Every statement ran; one result per statement that produced one.
        case queryCompleted([PostgresQueryResult])
        /// A statement failed. `completed` holds the results of the statements before it. The connection is
        /// ready for the next query (the server sent ReadyForQuery).
        case queryFailed(PostgresDiagnostic, completed: [PostgresQueryResult])
        /// Write these bytes (Terminate), then close.
        case sendAndClose([UInt8])
        /// Close the connection: it cannot be used any more.
        case close(PostgresConnectionFailure)
    }

    enum AuthenticationStep: Sendable {
        case awaitingRequest
        case sentPassword
        case scram(SCRAMSHA256Client)
        case scramVerified
        case authenticated
    }

    struct QueryProgress: Sendable {
        var results: [PostgresQueryResult] = []
        var columns: [PostgresColumn]?
        var rows: [[String?]] = []
        var error: PostgresDiagnostic?
        var copyingOut = false
    }

    enum State: Sendable {
        case initial
        case starting(AuthenticationStep)
        case ready
        case querying(QueryProgress)
        case closed
    }

    public let configuration: Configuration
    private var state = State.initial
    /// ParameterStatus values (server_version, server_encoding, TimeZone, …), kept current.
    public private(set) var parameters: [String: String] = [:]
    /// NoticeResponses in arrival order (warnings, RAISE NOTICE, "table does not exist, skipping").
    public private(set) var notices: [PostgresDiagnostic] = []
    /// NOTIFY messages received on this connection.
    public private(set) var notifications: [(processID: Int32, channel: String, payload: String)] = []
    public private(set) var backendProcessID: Int32?
    public private(set) var backendSecretKey: [UInt8]?
    public private(set) var transactionStatus: PostgresBackendMessage.TransactionStatus?
    /// A FATAL or PANIC error seen while waiting: the server closes right after, and this says why.
    public private(set) var pendingSessionError: PostgresDiagnostic?

    public init(configuration: Configuration) { self.configuration = configuration }

    public var isReadyForQuery: Bool { if case .ready = state { return true } else { return false } }
    public var isClosed: Bool { if case .closed = state { return true } else { return false } }

    /// Removes and returns the notices collected so far.
    public mutating func takeNotices() -> [PostgresDiagnostic] {
        defer { notices.removeAll() }
        return notices
    }

    // MARK: events from the shell

    /// The StartupMessage.
    public mutating func start() -> Action {
        guard case .initial = state else { return fail(.unexpected, "start() called twice on one connection") }
        do {
            let bytes = try PostgresFrontend.startupMessage(user: configuration.user, database: configuration.database,
                                                            applicationName: configuration.applicationName)
            state = .starting(.awaitingRequest)
            return .send(bytes)
        } catch let e as WireError {
            return fail(e)
        } catch {
            return fail(.malformed, "\(error)")
        }
    }

    /// A Query message with one or more statements. Only valid after `.connected` or a finished query.
    public mutating func query(_ sql: String) -> Action {
        guard case .ready = state else {
            // The caller broke the protocol's turn-taking; what the server would make of it is unknowable.
            return fail(.unexpected, "a query was sent while the connection was not ready for one")
        }
        do {
            let bytes = try PostgresFrontend.query(sql)
            state = .querying(QueryProgress())
            return .send(bytes)
        } catch let e as WireError {
            // Nothing was sent: the connection stays ready.
            return .queryFailed(PostgresDiagnostic([("S", "ERROR"), ("V", "ERROR"), ("C", "22021"), ("M", e.message)]), completed: [])
        } catch {
            return .queryFailed(PostgresDiagnostic([("S", "ERROR"), ("V", "ERROR"), ("M", "\(error)")]), completed: [])
        }
    }

    /// Terminate, when the connection is idle; otherwise just close.
    public mutating func terminate() -> Action {
        let wasReady = isReadyForQuery
        state = .closed
        return wasReady ? .sendAndClose(PostgresFrontend.terminate()) : .sendAndClose([])
    }

    /// The server closed the connection.
    public mutating func receivedEndOfStream() -> Action {
        let previous = state
        state = .closed
        if let error = pendingSessionError { return .close(.server(error)) }
        switch previous {
        case .initial, .starting:
            return .close(.closedByServer("the server closed the connection during startup, before authentication finished"))
        case .querying:
            return .close(.closedByServer("the server closed the connection while a query was running"))
        case .ready:
            return .close(.closedByServer("the server closed the idle connection"))
        case .closed:
            return .close(.closedByServer("the connection is closed"))
        }
    }

    public mutating func received(_ message: PostgresBackendMessage) -> Action {
        // Messages that may arrive at any time.
        switch message {
        case .parameterStatus(let name, let value):
            parameters[name] = value
            return .wait
        case .noticeResponse(let notice):
            notices.append(notice)
            return .wait
        case .notificationResponse(let pid, let channel, let payload):
            notifications.append((pid, channel, payload))
            return .wait
        default:
            break
        }
        switch state {
        case .initial:
            return fail(.unexpected, "the server spoke before the startup message was sent")
        case .starting(let step):
            return receivedDuringStartup(message, step: step)
        case .ready:
            if case .errorResponse(let error) = message, error.endsSession {
                pendingSessionError = error
                return .wait
            }
            return fail(.unexpected, "the server sent \(Self.describe(message)) while the connection was idle")
        case .querying(var progress):
            return receivedDuringQuery(message, progress: &progress)
        case .closed:
            return .close(.client(WireError(.unexpected, "the connection is closed")))
        }
    }

    // MARK: startup and authentication

    private mutating func receivedDuringStartup(_ message: PostgresBackendMessage, step: AuthenticationStep) -> Action {
        switch message {
        case .errorResponse(let error):
            state = .closed
            return .close(.server(error))
        case .negotiateProtocolVersion:
            // Sent when the server is older than the requested minor version; 3.0 is what we speak anyway.
            return .wait
        case .authentication(let request):
            return receivedAuthentication(request, step: step)
        case .backendKeyData(let pid, let key):
            guard case .authenticated = step else { return fail(.unexpected, "BackendKeyData arrived before authentication finished") }
            backendProcessID = pid; backendSecretKey = key
            return .wait
        case .readyForQuery(let status):
            guard case .authenticated = step else { return fail(.unexpected, "ReadyForQuery arrived before authentication finished") }
            transactionStatus = status
            state = .ready
            return .connected
        default:
            return fail(.unexpected, "the server sent \(Self.describe(message)) during startup")
        }
    }

    private mutating func receivedAuthentication(_ request: PostgresBackendMessage.Authentication, step: AuthenticationStep) -> Action {
        let user = configuration.user
        switch (request, step) {
        case (.ok, .awaitingRequest), (.ok, .sentPassword), (.ok, .scramVerified):
            state = .starting(.authenticated)
            return .wait
        case (.ok, .scram):
            // Accepting this would let a server that does not know the password skip proving it.
            return fail(.authentication, "the server ended SCRAM authentication without proving it knows the password for user \"\(user)\"; refusing the connection")

        case (.cleartextPassword, .awaitingRequest):
            guard let password = requirePassword() else { return missingPassword("password") }
            return sendOrFail(.sentPassword) { try PostgresFrontend.passwordMessage(password) }

        case (.md5Password(let salt), .awaitingRequest):
            guard let password = requirePassword() else { return missingPassword("md5") }
            return sendOrFail(.sentPassword) { try PostgresFrontend.md5PasswordMessage(user: user, password: password, salt: salt) }

        case (.sasl(let mechanisms), .awaitingRequest):
            guard mechanisms.contains(SCRAMSHA256Client.mechanism) else {
                return fail(.unsupported, "the server offers SASL mechanisms \(mechanisms.joined(separator: ", ")) for user \"\(user)\", but sagedev speaks only SCRAM-SHA-256 without TLS; use scram-sha-256 in pg_hba.conf")
            }
            guard let password = requirePassword() else { return missingPassword("scram-sha-256") }
            // PostgreSQL takes the user from the startup message and ignores the SCRAM one.
            var client = SCRAMSHA256Client(username: "", password: password, clientNonce: configuration.scramClientNonce,
                                           saltedPassword: configuration.scramSaltedPassword)
            let first = client.clientFirstMessage()
            return sendOrFail(.scram(client)) {
                try PostgresFrontend.saslInitialResponse(mechanism: SCRAMSHA256Client.mechanism, initialResponse: first)
            }

        case (.saslContinue(let data), .scram(var client)):
            do {
                let final = try client.receive(serverFirst: data)
                let bytes = try PostgresFrontend.saslResponse(final)
                state = .starting(.scram(client))
                return .send(bytes)
            } catch let e as WireError {
                return fail(e)
            } catch {
                return fail(.authentication, "\(error)")
            }

        case (.saslFinal(let data), .scram(var client)):
            do {
                try client.receive(serverFinal: data)
                state = .starting(.scramVerified)
                return .wait
            } catch let e as WireError {
                return fail(e)
            } catch {
                return fail(.authentication, "\(error)")
            }

        case (.unsupported(let code), _):
            let method: String
            switch code {
            case 2: method = "Kerberos V5"
            case 6: method = "SCM credentials"
            case 7, 8: method = "GSSAPI"
            case 9: method = "SSPI"
            default: method = "method \(code)"
            }
            return fail(.unsupported, "the server asks user \"\(user)\" to authenticate with \(method), which sagedev does not support; use scram-sha-256, md5, password or trust in pg_hba.conf")

        default:
            return fail(.unexpected, "the server sent authentication request \(Self.describe(request)) at the wrong point of the exchange")
        }
    }

    private func requirePassword() -> String? {
        configuration.password.isEmpty ? nil : configuration.password
    }

    private mutating func missingPassword(_ method: String) -> Action {
        fail(.authentication, "the server requires \(method) authentication for user \"\(configuration.user)\", but no password is configured; set the password")
    }

    private mutating func sendOrFail(_ next: AuthenticationStep, _ encode: () throws -> [UInt8]) -> Action {
        do {
            let bytes = try encode()
            state = .starting(next)
            return .send(bytes)
        } catch let e as WireError {
            return fail(e)
        } catch {
            return fail(.malformed, "\(error)")
        }
    }

    // MARK: simple query

    private mutating func receivedDuringQuery(_ message: PostgresBackendMessage, progress: inout QueryProgress) -> Action {
        switch message {
        case .rowDescription(let columns):
            guard progress.columns == nil, !progress.copyingOut else { return fail(.unexpected, "a RowDescription arrived in the middle of another result") }
            progress.columns = columns
            progress.rows = []
        case .dataRow(let values):
            guard let columns = progress.columns, !progress.copyingOut else { return fail(.unexpected, "a DataRow arrived without a RowDescription") }
            guard values.count == columns.count else {
                return fail(.malformed, "a DataRow has \(values.count) values for \(columns.count) columns")
            }
            progress.rows.append(values.map { $0.map { String(decoding: $0, as: UTF8.self) } })
        case .commandComplete(let tag):
            progress.results.append(PostgresQueryResult(columns: progress.columns ?? [], rows: progress.rows, commandTag: tag))
            progress.columns = nil
            progress.rows = []
            progress.copyingOut = false
        case .emptyQueryResponse:
            guard progress.columns == nil else { return fail(.unexpected, "EmptyQueryResponse arrived in the middle of a result") }
        case .errorResponse(let error):
            progress.error = error
            progress.columns = nil
            progress.rows = []
            progress.copyingOut = false
            if error.endsSession { pendingSessionError = error }
        case .copyResponse(.into, _, _):
            // The simple query protocol has no data to give: refuse, and the server answers with an error.
            state = .querying(progress)
            return sendOrFailQuery(progress) {
                try PostgresFrontend.copyFail("COPY FROM STDIN is not supported by sagedev's client; use INSERT or COPY FROM a file")
            }
        case .copyResponse(.outOf, _, _):
            progress.copyingOut = true
            progress.columns = [PostgresColumn(name: "COPY")]
            progress.rows = []
        case .copyData(let data):
            guard progress.copyingOut else { return fail(.unexpected, "CopyData arrived outside a COPY TO STDOUT") }
            progress.rows.append([String(decoding: data, as: UTF8.self)])
        case .copyDone:
            guard progress.copyingOut else { return fail(.unexpected, "CopyDone arrived outside a COPY TO STDOUT") }
        case .copyResponse(.both, _, _):
            return fail(.unsupported, "the server started a COPY BOTH (replication) stream, which sagedev's client does not speak")
        case .readyForQuery(let status):
            transactionStatus = status
            let finished = progress
            state = .ready
            if let error = finished.error { return .queryFailed(error, completed: finished.results) }
            guard finished.columns == nil else { return fail(.unexpected, "ReadyForQuery arrived before the last result was complete") }
            return .queryCompleted(finished.results)
        default:
            return fail(.unexpected, "the server sent \(Self.describe(message)) during a query")
        }
        state = .querying(progress)
        return .wait
    }

    private mutating func sendOrFailQuery(_ progress: QueryProgress, _ encode: () throws -> [UInt8]) -> Action {
        do { return .send(try encode()) } catch let e as WireError { return fail(e) } catch { return fail(.malformed, "\(error)") }
    }

    // MARK: failing

    private mutating func fail(_ code: WireError.Code, _ message: String) -> Action {
        fail(WireError(code, message))
    }

    private mutating func fail(_ error: WireError) -> Action {
        state = .closed
        return .close(.client(error))
    }

    static func describe(_ message: PostgresBackendMessage) -> String {
        switch message {
        case .authentication(let a): return "Authentication (\(describe(a)))"
        case .parameterStatus: return "ParameterStatus"
        case .backendKeyData: return "BackendKeyData"
        case .readyForQuery: return "ReadyForQuery"
        case .noticeResponse: return "NoticeResponse"
        case .errorResponse(let e): return "ErrorResponse (\(e.description))"
        case .rowDescription: return "RowDescription"
        case .dataRow: return "DataRow"
        case .commandComplete(let tag): return "CommandComplete (\(tag))"
        case .emptyQueryResponse: return "EmptyQueryResponse"
        case .notificationResponse: return "NotificationResponse"
        case .negotiateProtocolVersion: return "NegotiateProtocolVersion"
        case .copyResponse: return "a COPY response"
        case .copyData: return "CopyData"
        case .copyDone: return "CopyDone"
        }
    }

    static func describe(_ request: PostgresBackendMessage.Authentication) -> String {
        switch request {
        case .ok: return "AuthenticationOk"
        case .cleartextPassword: return "cleartext password"
        case .md5Password: return "md5 password"
        case .sasl(let m): return "SASL \(m.joined(separator: ", "))"
        case .saslContinue: return "SASL continue"
        case .saslFinal: return "SASL final"
        case .unsupported(let code): return "method \(code)"
        }
    }
}
