import SageSystem

/// Runs the migrate or seed command (`SAGEDEV_MIGRATE_COMMAND`, `SAGEDEV_SEED_COMMAND`) as a one-shot job in the
/// backend's directory and environment (through the runtime, so that it works the same under compose).
public typealias DatabaseCommandRunner = @Sendable (_ command: String, _ deadline: Deadline) throws -> CompletedProcess

/// Applies one SQL file in its own transaction and records it, or rolls it back and names the file and line.
enum SQLFileRunner {
    enum Kind: String { case migration, seed }

    /// BEGIN; the file; the history row (built once the file's duration is known); COMMIT.
    static func apply(_ f: SQLFile, kind: Kind, on conn: PostgresConnection, deadline: Deadline,
                      record: (_ durationMilliseconds: Int) -> String) throws {
        let code: DatabaseError.Code = kind == .migration ? .migrationFailed : .seedFailed
        let started = monotonicNanoseconds()
        do {
            _ = try conn.simpleQuery("BEGIN", deadline: deadline)
            if !f.isBlank { _ = try conn.simpleQuery(f.text, deadline: deadline) }
            // A deferred constraint fails at COMMIT; the server has rolled back by then.
            _ = try conn.simpleQuery(record(Int(millisecondsSince(started).rounded())) + "; COMMIT", deadline: deadline)
        } catch let e as PostgresError {
            if conn.isOpen { _ = try? conn.simpleQuery("ROLLBACK", deadline: .after(seconds: 30)) }
            throw fileError(f, kind: kind, code: code, e)
        }
    }

    static func fileError(_ f: SQLFile, kind: Kind, code: DatabaseError.Code, _ e: PostgresError) -> DatabaseError {
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
        return DatabaseError(code, m, file: f.name, line: place?.line, column: place?.column, sqlState: e.sqlState, hint: e.hint)
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

/// Serialises migrate and seed runs on one database across sessions (the daemon's hook, `sagedev migrate`, tools).
let migrationLockKey = 7_141_905_311

/// Applies the SQL files of the migrations directory in name order, each in its own transaction, recording each in
/// `sagedev_migrations` with its checksum; then runs the migrate command, if any.
public struct Migrator: Sendable {
    public static let historyTable = "sagedev_migrations"

    public struct Report: Sendable, Equatable {
        public var applied: [String]
        public var alreadyApplied: Int
        public var commandRan: Bool
        public var milliseconds: Double
        public var summary: String {
            var s = applied.isEmpty ? "no pending migrations (\(alreadyApplied) applied before)"
                : "applied \(applied.count) migration\(applied.count == 1 ? "" : "s") (\(applied.joined(separator: ", ")))"
            if commandRan { s += " and ran the migrate command" }
            return s + " in \(Int(milliseconds.rounded())) ms"
        }
    }

    public var files: [SQLFile]
    public var command: String
    public var runCommand: DatabaseCommandRunner?

    public init(files: [SQLFile], command: String = "", runCommand: DatabaseCommandRunner? = nil) {
        self.files = files; self.command = command; self.runCommand = runCommand
    }

    public init(config c: Config, runCommand: DatabaseCommandRunner?) throws {
        self.init(files: try SQLFiles.load(directory: SQLFiles.resolve(c.migrationsDirectory, in: c.projectDirectory)),
                  command: c.migrateCommand, runCommand: runCommand)
    }

    static func ensureHistory(_ conn: PostgresConnection) throws {
        _ = try conn.run("""
            CREATE TABLE IF NOT EXISTS \(historyTable) (
                name        text PRIMARY KEY,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL DEFAULT 0
            )
            """, .migrationFailed, "creating the \(historyTable) table")
    }

    /// Name → checksum of every recorded migration.
    public func applied(_ conn: PostgresConnection) throws -> [String: String] {
        try Migrator.ensureHistory(conn)
        let r = try conn.run("SELECT name, checksum FROM \(Migrator.historyTable)", .migrationFailed, "reading \(Migrator.historyTable)")
        var out: [String: String] = [:]
        for row in r.last?.rows ?? [] { if let n = row[0], let c = row[1] { out[n] = c } }
        return out
    }

    /// The files not applied yet. An applied file whose checksum changed is an error naming it.
    public func pending(_ conn: PostgresConnection) throws -> [SQLFile] {
        let done = try applied(conn)
        var edited: [String] = []
        for f in files { if let c = done[f.name], c != f.checksum { edited.append(f.name) } }
        if !edited.isEmpty {
            let list = edited.joined(separator: ", ")
            throw DatabaseError(.migrationEdited, "migration\(edited.count == 1 ? "" : "s") \(list) \(edited.count == 1 ? "was" : "were") edited after \(edited.count == 1 ? "it was" : "they were") applied (the checksum in \(Migrator.historyTable) no longer matches \(files.first { $0.name == edited[0] }?.path ?? edited[0])); restore the applied version and put the change in a new migration file, or run 'sagedev reset-db' to rebuild the database from the edited files",
                                file: edited[0])
        }
        return files.filter { done[$0.name] == nil }
    }

    /// Applies what is pending, then the migrate command. Holds an advisory lock meanwhile.
    public func migrate(_ conn: PostgresConnection, deadline: Deadline = .after(seconds: 3600)) throws -> Report {
        let start = monotonicNanoseconds()
        _ = try conn.run("SELECT pg_advisory_lock(\(migrationLockKey))", .connection, "taking the migration lock", deadline: deadline)
        defer { _ = try? conn.simpleQuery("SELECT pg_advisory_unlock(\(migrationLockKey))", deadline: .after(seconds: 10)) }
        let todo = try pending(conn)
        for f in todo {
            try SQLFileRunner.apply(f, kind: .migration, on: conn, deadline: deadline) { ms in
                "INSERT INTO \(Migrator.historyTable) (name, checksum, duration_ms) VALUES (\(SQL.literal(f.name)), \(SQL.literal(f.checksum)), \(ms))"
            }
        }
        var ran = false
        if !command.isEmpty {
            try SQLFileRunner.run(command, kind: .migration, runner: runCommand, deadline: deadline)
            ran = true
        }
        return Report(applied: todo.map(\.name), alreadyApplied: files.count - todo.count, commandRan: ran,
                      milliseconds: millisecondsSince(start))
    }
}
