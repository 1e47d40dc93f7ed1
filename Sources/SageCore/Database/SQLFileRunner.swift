import SageSystem

/// Runs the migrate or seed command (`SAGEDEV_MIGRATE_COMMAND`, `SAGEDEV_SEED_COMMAND`) as a one-shot job in the
/// backend's directory and environment (through the runtime, so that it works the same under compose).
public typealias DatabaseCommandRunner = @Sendable (_ command: String, _ deadline: Deadline) throws -> CompletedProcess

/// Serialises migrate and seed runs on one database across sessions (the daemon's hook, `sagedev migrate`, tools).
let migrationLockKey = 7_141_905_311

/// What migrate and seed share: the lock that serialises them, their history tables, applying one SQL file in its own
/// transaction (recording it, or rolling it back and naming the file and line) and running their command.
enum SQLFileRunner {
    enum Kind: String {
        case migration, seed
        /// The code of the errors a migrate or seed run throws.
        var failureCode: DatabaseError.Code { self == .migration ? .migrationFailed : .seedFailed }
    }

    /// BEGIN; the file; the history row (built once the file's duration is known); COMMIT.
    static func apply(_ f: SQLFile, kind: Kind, on conn: PostgresConnection, deadline: Deadline,
                      record: (_ durationMilliseconds: Int) -> String) throws {
        let started = monotonicNanoseconds()
        do {
            _ = try conn.simpleQuery("BEGIN", deadline: deadline)
            if !f.isBlank { _ = try conn.simpleQuery(f.text, deadline: deadline) }
            // A deferred constraint fails at COMMIT; the server has rolled back by then.
            _ = try conn.simpleQuery(record(Int(millisecondsSince(started).rounded())) + "; COMMIT", deadline: deadline)
        } catch let e as PostgresError {
            if conn.isOpen { _ = try? conn.simpleQuery("ROLLBACK", deadline: .after(seconds: 30)) }
            throw fileError(f, kind: kind, e)
        }
    }

    /// Runs `body` holding the advisory lock that serialises migrate and seed runs on one database.
    static func withLock<T>(_ conn: PostgresConnection, kind: Kind, deadline: Deadline, _ body: () throws -> T) throws -> T {
        _ = try conn.run("SELECT pg_advisory_lock(\(migrationLockKey))", .connection, "taking the \(kind.rawValue) lock", deadline: deadline)
        defer { _ = try? conn.simpleQuery("SELECT pg_advisory_unlock(\(migrationLockKey))", deadline: .after(seconds: 10)) }
        return try body()
    }

    /// Creates a history table when it is missing: a row per name, with `columns` between the name and the time.
    static func ensureHistory(_ conn: PostgresConnection, table: String, columns: [String], kind: Kind) throws {
        let all = ["name text PRIMARY KEY"] + columns + ["applied_at timestamptz NOT NULL DEFAULT now()", "duration_ms integer NOT NULL DEFAULT 0"]
        _ = try conn.run("CREATE TABLE IF NOT EXISTS \(table) (\(all.joined(separator: ", ")))", kind.failureCode, "creating the \(table) table")
    }

    /// Name → checksum of every row of a history table.
    static func history(_ conn: PostgresConnection, table: String, kind: Kind) throws -> [String: String] {
        let r = try conn.run("SELECT name, checksum FROM \(table)", kind.failureCode, "reading \(table)")
        var out: [String: String] = [:]
        for row in r.last?.rows ?? [] { if let n = row[0] { out[n] = row[1] ?? "" } }
        return out
    }

    static func fileError(_ f: SQLFile, kind: Kind, _ e: PostgresError) -> DatabaseError {
        var place: (line: Int, column: Int)?
        if let p = e.position { place = SQLLocation.lineAndColumn(ofPosition: p, in: f.text) }
        var m = "\(kind.rawValue) \(f.name) failed"
        if let place { m += " at line \(place.line), column \(place.column)" } else if e.kind == .server { m += " (the server did not say where in the file)" }
        m += ": \(e.message)"
        if let s = e.sqlState { m += " (SQLSTATE \(s))" }
        if let place, let text = SQLLocation.lineText(place.line, in: f.text) {
            m += "\n  \(place.line) | \(text.prefix(200))"
            m += "\n  " + String(repeating: " ", count: String(place.line).count) + " | "
                + String(repeating: " ", count: max(0, min(place.column - 1, 200))) + "^"
        }
        if let d = e.detail { m += "\n  detail: \(d)" }
        if let h = e.hint { m += "\n  hint: \(h)" }
        if let w = e.where, place == nil { m += "\n  context: \(w)" }
        switch e.kind {
        case .server, .authentication:
            m += "\n  nothing of \(f.name) was applied: its transaction was rolled back."
        case .timeout:
            m += "\n  it did not finish before its deadline; the connection was closed, so the server rolls \(f.name) back."
        default:
            m += "\n  the connection broke, so the server rolled \(f.name) back."
        }
        m += kind == .migration
            ? " Fix \(f.path), then run 'sagedev migrate' (or 'sagedev up')."
            : " Fix \(f.path), then run 'sagedev seed' (or 'sagedev reset-db')."
        return DatabaseError(kind.failureCode, m, file: f.name, line: place?.line, column: place?.column, sqlState: e.sqlState, hint: e.hint)
    }

    static func commandError(_ command: String, kind: Kind, _ r: CompletedProcess) -> DatabaseError {
        let output = (r.stdoutText + r.stderrText).split(separator: "\n").suffix(20).map { "  | " + $0 }.joined(separator: "\n")
        return DatabaseError(.commandFailed, "the \(kind.rawValue) command `\(command)` failed (\(r.status))" + (output.isEmpty ? "" : ":\n" + output)
                             + "\n  fix it or SAGEDEV_\(kind == .migration ? "MIGRATE" : "SEED")_COMMAND in .env, then run 'sagedev \(kind == .migration ? "migrate" : "seed")'")
    }

    static func run(_ command: String, kind: Kind, runner: DatabaseCommandRunner?, deadline: Deadline) throws {
        guard let runner else {
            throw DatabaseError(.commandFailed, "the \(kind.rawValue) command `\(command)` cannot run here (no runtime to run it in)")
        }
        let r: CompletedProcess
        do { r = try runner(command, deadline) } catch let e as DatabaseError { throw e } catch {
            throw DatabaseError(.commandFailed, "the \(kind.rawValue) command `\(command)` could not run: \(error)")
        }
        guard r.status.isSuccess else { throw commandError(command, kind: kind, r) }
    }
}
