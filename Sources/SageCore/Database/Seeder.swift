import SageSystem

/// Applies the SQL files of the seeds directory in name order, each in its own transaction, recording each in
/// `sagedev_seeds`; then runs the seed command, if any. Seeds run once on a database that was never seeded
/// (the hook before the apps start) and again whenever `sagedev seed` asks.
public struct Seeder: Sendable {
    public static let historyTable = "sagedev_seeds"
    /// History rows that are not files: the command, the finished run, and a run skipped on purpose.
    static let commandRow = "(seed command)"
    static let completeRow = "(seeding complete)"
    static let skippedRow = "(seeding skipped)"

    public struct Report: Sendable, Equatable {
        public var applied: [String]
        public var commandRan: Bool
        public var milliseconds: Double
        public var summary: String {
            var s = applied.isEmpty ? "no seed files" : "applied \(applied.count) seed file\(applied.count == 1 ? "" : "s") (\(applied.joined(separator: ", ")))"
            if commandRan { s += (applied.isEmpty ? "; ran" : " and ran") + " the seed command" }
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
        self.init(files: try SQLFiles.load(directory: SQLFiles.resolve(c.seedsDirectory, in: c.projectDirectory)),
                  command: c.seedCommand, runCommand: runCommand)
    }

    /// Whether there is anything to seed with.
    public var isEmpty: Bool { files.isEmpty && command.isEmpty }

    static func ensureHistory(_ conn: PostgresConnection) throws {
        try SQLFileRunner.ensureHistory(conn, table: historyTable, columns: ["kind text NOT NULL", "checksum text NOT NULL DEFAULT ''"], kind: .seed)
    }

    /// Whether a seed run finished on this database (or was skipped on purpose with `reset-db --no-seed`).
    public func isSeeded(_ conn: PostgresConnection) throws -> Bool {
        try Seeder.ensureHistory(conn)
        let v = try conn.run("SELECT EXISTS (SELECT 1 FROM \(Seeder.historyTable) WHERE kind IN ('complete', 'skipped'))",
                             .seedFailed, "reading \(Seeder.historyTable)").last?.rows.first?.first ?? nil
        return v == "t"
    }

    /// Seeds a database that was never seeded: the files not yet recorded (a run that failed half way resumes at
    /// the failed file), then the command. Returns nil when it was seeded already or there is nothing to seed.
    public func seedIfUnseeded(_ conn: PostgresConnection, deadline: Deadline = .after(seconds: 3600)) throws -> Report? {
        guard !isEmpty else { return nil }
        return try SQLFileRunner.withLock(conn, kind: .seed, deadline: deadline) {
            if try isSeeded(conn) { return nil }
            let done = try SQLFileRunner.history(conn, table: Seeder.historyTable, kind: .seed)
            return try run(files.filter { done[$0.name] == nil }, command: done[Seeder.commandRow] == nil, conn, deadline)
        }
    }

    /// Applies every seed file and the command again (`sagedev seed`).
    public func seedAll(_ conn: PostgresConnection, deadline: Deadline = .after(seconds: 3600)) throws -> Report {
        try SQLFileRunner.withLock(conn, kind: .seed, deadline: deadline) {
            try Seeder.ensureHistory(conn)
            return try run(files, command: true, conn, deadline)
        }
    }

    /// Records that this database is deliberately left unseeded, so the next `up` does not seed it.
    public func markSkipped(_ conn: PostgresConnection) throws {
        try Seeder.ensureHistory(conn)
        _ = try conn.run("INSERT INTO \(Seeder.historyTable) (name, kind) VALUES (\(SQL.literal(Seeder.skippedRow)), 'skipped') ON CONFLICT (name) DO NOTHING",
                         .seedFailed, "recording the skipped seed run")
    }

    private func run(_ todo: [SQLFile], command runCommandToo: Bool, _ conn: PostgresConnection, _ deadline: Deadline) throws -> Report {
        let start = monotonicNanoseconds()
        for f in todo {
            try SQLFileRunner.apply(f, kind: .seed, on: conn, deadline: deadline) { ms in
                Seeder.upsert(name: f.name, kind: "file", checksum: f.checksum, ms: ms)
            }
        }
        var ran = false
        if runCommandToo && !command.isEmpty {
            let t = monotonicNanoseconds()
            try SQLFileRunner.run(command, kind: .seed, runner: runCommand, deadline: deadline)
            _ = try conn.run(Seeder.upsert(name: Seeder.commandRow, kind: "command", checksum: SQLFile.checksum(Array(command.utf8)),
                                           ms: Int(millisecondsSince(t).rounded())), .seedFailed, "recording the seed command")
            ran = true
        }
        _ = try conn.run(Seeder.upsert(name: Seeder.completeRow, kind: "complete", checksum: "", ms: Int(millisecondsSince(start).rounded()))
                         + "; DELETE FROM \(Seeder.historyTable) WHERE kind = 'skipped'", .seedFailed, "recording the seed run")
        return Report(applied: todo.map(\.name), commandRan: ran, milliseconds: millisecondsSince(start))
    }

    static func upsert(name: String, kind: String, checksum: String, ms: Int) -> String {
        """
        INSERT INTO \(historyTable) (name, kind, checksum, duration_ms) VALUES (\(SQL.literal(name)), \(SQL.literal(kind)), \(SQL.literal(checksum)), \(ms))
        ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, checksum = EXCLUDED.checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms
        """
    }
}
