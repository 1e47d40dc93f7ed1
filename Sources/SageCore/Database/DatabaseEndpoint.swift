import SageSystem

/// Where the project's PostgreSQL is and as whom sagedev talks to it: the `.env` user (the cluster's
/// superuser in both runtimes), over TCP on the published port, so the native and compose runtimes look the same.
public struct DatabaseEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    /// The app database (POSTGRES_DB).
    public var database: String

    public init(host: String, port: Int, user: String, password: String, database: String) {
        self.host = host; self.port = port; self.user = user; self.password = password; self.database = database
    }

    public init(config c: Config) {
        self.init(host: Stack.dialHost(c), port: c.postgres.port, user: c.postgres.user, password: c.postgres.password,
                  database: c.postgres.database)
    }

    /// The database sagedev connects to when it drops, creates and clones the app database.
    public var maintenanceDatabase: String { database == "postgres" ? "template1" : "postgres" }

    public func options(database db: String? = nil) -> PostgresConnectOptions {
        PostgresConnectOptions(host: host, port: port, user: user, password: password, database: db ?? database,
                               applicationName: "sagedev")
    }

    public func connect(database db: String? = nil, deadline: Deadline = .after(seconds: 10)) throws -> PostgresConnection {
        do {
            return try PostgresConnection.connect(options(database: db), deadline: deadline)
        } catch let e as PostgresError {
            throw DatabaseError(.connection, "cannot connect to database \"\(db ?? database)\" at \(e.endpoint): \(e.message); check that postgres runs ('sagedev status') and the POSTGRES_* values in .env", sqlState: e.sqlState)
        }
    }

    public func connectMaintenance(deadline: Deadline = .after(seconds: 10)) throws -> PostgresConnection {
        try connect(database: maintenanceDatabase, deadline: deadline)
    }
}

extension PostgresConnection {
    /// Runs statements and returns the first column of the first row of the last result, if any.
    @discardableResult
    func scalar(_ sql: String, deadline: Deadline = .after(seconds: 60)) throws -> String? {
        let results = try simpleQuery(sql, deadline: deadline)
        return results.last?.rows.first?.first ?? nil
    }

    /// Runs statements, mapping a server error to a DatabaseError with the given code and context.
    func run(_ sql: String, _ code: DatabaseError.Code, _ what: String, deadline: Deadline = .after(seconds: 300)) throws -> [PostgresResult] {
        do {
            return try simpleQuery(sql, deadline: deadline)
        } catch let e as PostgresError {
            var m = "\(what) failed: \(e.message)"
            if let s = e.sqlState { m += " (SQLSTATE \(s))" }
            if let h = e.hint { m += "; hint: \(h)" }
            throw DatabaseError(code, m, sqlState: e.sqlState, hint: e.hint)
        }
    }
}
