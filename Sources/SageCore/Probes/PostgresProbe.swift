import SageSystem
import SageWire

/// PostgreSQL is ready when a real client gets through authentication and `SELECT 1` returns its row.
/// Refused, reset, no answer in time and "starting up" (57P03) are worth retrying; a wrong password,
/// a missing database or a peer that is not PostgreSQL are not, and the reason says which setting to fix.
public struct PostgresProbe: Probe {
    public let host: String
    public let port: Int
    public let user: String
    public let password: String
    public let database: String
    public let unixSocketDirectory: String?
    /// Where to check the server instead when `database` is missing or does not accept connections (3D000, 55000):
    /// while postgres starts, the app database may be mid-swap, which says nothing about the server.
    public var fallbackDatabase: String?
    /// Offered the session of a successful check on `database`: true keeps it open for the taker, false closes it.
    public var keep: (@Sendable (PostgresConnection) -> Bool)?

    public init(host: String, port: Int, user: String, password: String, database: String, unixSocketDirectory: String? = nil) {
        self.host = host; self.port = port; self.user = user; self.password = password
        self.database = database; self.unixSocketDirectory = unixSocketDirectory
    }

    public var options: PostgresConnectOptions { options(database: database) }

    /// The same check of another database (without `fallbackDatabase` and `keep`).
    public func on(database db: String) -> PostgresProbe {
        PostgresProbe(host: host, port: port, user: user, password: password, database: db, unixSocketDirectory: unixSocketDirectory)
    }

    func options(database db: String) -> PostgresConnectOptions {
        PostgresConnectOptions(host: host, port: port, unixSocketDirectory: unixSocketDirectory, user: user,
                               password: password, database: db)
    }

    /// `postgres://sage:****@127.0.0.1:5432/sage`, or `postgres://sage:****@/sage?host=/run/pg&port=5432` for a socket.
    public var target: String {
        let credentials = password.isEmpty ? user : "\(user):****"
        if let dir = unixSocketDirectory { return "postgres://\(credentials)@/\(database)?host=\(dir)&port=\(port)" }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(credentials)@\(shownHost):\(port)/\(database)"
    }

    /// A server that answers "starting up" (57P03) is moments from ready: re-check it every couple of
    /// milliseconds (for up to this long) instead of waiting for the caller's next, slower, slot.
    static let startingUpWindowMilliseconds = 250
    static let startingUpIntervalMilliseconds = 2

    public func check(deadline: Deadline) -> ProbeOutcome {
        var (outcome, sqlState) = checkOnce(deadline: deadline)
        let window = Deadline.after(milliseconds: PostgresProbe.startingUpWindowMilliseconds).earlier(deadline)
        while case .notReady = outcome, sqlState == "57P03", !window.hasPassed {
            Deadline.after(milliseconds: PostgresProbe.startingUpIntervalMilliseconds).wait()
            // Re-checks live within the window; if one cannot finish there, the server's last answer stands.
            let (next, nextState) = checkOnce(deadline: window)
            if case .notReady = next, nextState != "57P03" { break }
            (outcome, sqlState) = (next, nextState)
        }
        return outcome
    }

    /// One attempt, with the SQLSTATE of a refusal (57P03 drives the fast re-check above); through
    /// `fallbackDatabase` when `database` is missing or refuses connections.
    private func checkOnce(deadline: Deadline) -> (ProbeOutcome, String?) {
        let first = checkOnce(database: database, keeping: keep, deadline: deadline)
        guard let fallback = fallbackDatabase, first.1 == "3D000" || first.1 == "55000" else { return first }
        return checkOnce(database: fallback, keeping: nil, deadline: deadline)
    }

    func checkOnce(database: String, keeping keep: (@Sendable (PostgresConnection) -> Bool)?, deadline: Deadline) -> (ProbeOutcome, String?) {
        let options = options(database: database)
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection.connect(options, deadline: deadline)
        } catch let e as PostgresError {
            return (PostgresProbe.outcome(for: e, user: user, database: database), e.sqlState)
        } catch {
            return (.fatal("\(error)"), nil)
        }
        var kept = false
        defer { if !kept { connection.close() } }
        do {
            let results = try connection.simpleQuery("SELECT 1", deadline: deadline)
            guard results.count == 1, results[0].rows == [["1"]] else {
                return (.fatal("SELECT 1 on \(options.endpoint) returned \(results.map(\.rows)) instead of one row with 1: this is not a working PostgreSQL"), nil)
            }
        } catch let e as PostgresError {
            return (PostgresProbe.outcome(for: e, user: user, database: database), e.sqlState)
        } catch {
            return (.fatal("\(error)"), nil)
        }
        let version = connection.parameters["server_version"].map { "PostgreSQL \($0)" } ?? "PostgreSQL"
        kept = keep?(connection) ?? false
        return (.ready("\(version) at \(options.endpoint) accepted user \"\(user)\" on database \"\(database)\" and answered SELECT 1"), nil)
    }

    /// Sorts a client error into retry-or-stop, with a reason that names the setting to fix.
    public static func outcome(for e: PostgresError, user: String, database: String) -> ProbeOutcome {
        let at = e.endpoint
        switch e.kind {
        case .timeout:
            return .notReady("no answer from \(at) before the deadline" + (e.message.contains("stalled") ? ": \(e.message)" : ""))
        case .connection:
            if e.systemError?.code == .invalidAddress { return .fatal("\(at): \(e.message); check the host in .env") }
            return .notReady("\(at): \(e.message)")
        case .protocol:
            // The message says what the peer looks like instead (HTTP, TLS-only, Redis) or what it broke.
            return .fatal("\(at): \(e.message)")
        case .authentication:
            guard let state = e.sqlState else {
                // The client gave up: no password, unsupported method, or a server that failed to prove the password.
                let fix = e.message.contains("no password is configured") ? "set POSTGRES_PASSWORD in .env" : "check POSTGRES_PASSWORD in .env and the server's pg_hba.conf"
                return .fatal("\(e.message): \(fix)")
            }
            if state == "28P01" { return .fatal("\(e.message): check POSTGRES_PASSWORD in .env") }
            if e.message.contains("role") { return .fatal("\(e.message): check POSTGRES_USER in .env") }
            return .fatal("\(e.message): check POSTGRES_USER and POSTGRES_PASSWORD in .env, and pg_hba.conf")
        case .server:
            let state = e.sqlState ?? ""
            switch state {
            case "3D000":
                return .fatal("\(e.message): check POSTGRES_DB in .env")
            case "57P03", "57P01", "57P02", "53300":
                // Starting up, shutting down, recovering, restarting after a crash, or out of connection slots.
                return .notReady("\(at): \(e.message) (SQLSTATE \(state))")
            default:
                if state.hasPrefix("53") || state.hasPrefix("08") { return .notReady("\(at): \(e.message) (SQLSTATE \(state))") }
                return .fatal("\(at): \(e.diagnostic?.description ?? e.message)")
            }
        }
    }
}
