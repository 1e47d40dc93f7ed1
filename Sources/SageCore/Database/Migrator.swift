import SageSystem

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
        try SQLFileRunner.ensureHistory(conn, table: historyTable, columns: ["checksum text NOT NULL"], kind: .migration)
    }

    /// Name → checksum of every recorded migration.
    public func applied(_ conn: PostgresConnection) throws -> [String: String] {
        try Migrator.ensureHistory(conn)
        return try SQLFileRunner.history(conn, table: Migrator.historyTable, kind: .migration)
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
        return try SQLFileRunner.withLock(conn, kind: .migration, deadline: deadline) {
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
}
