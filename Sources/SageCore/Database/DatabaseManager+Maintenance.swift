import Foundation
import SageSystem

extension DatabaseManager {
    // MARK: seed, migrate

    /// Applies every seed file and the seed command again (the apps keep running).
    public func seed(sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let op = DatabaseOperation(
            name: "seed", clients: .keepRunning,
            critical: { [self] ctx in
                let c = ctx.config
                let s = try seeder(c)
                guard !s.isEmpty else {
                    try ctx.recorder.step("seed") { "nothing to seed: no *.sql files in \(c.seedsDirectory) and no SAGEDEV_SEED_COMMAND" }
                    return
                }
                let conn = try endpoint(c).connect()
                defer { conn.close() }
                try ctx.recorder.step("seed") { try s.seedAll(conn).summary }
            },
            onFailure: { _, _ in .init(message: "the seeds that ran before the failing one stay applied.", restartClients: true, code: .seedFailed) },
            finish: { ctx in let db = ctx.database; return { $0.database = db } })
        return try execute(op, sink: sink)
    }

    /// Check connectivity, stop the clients of postgres, take an automatic snapshot, apply pending migrations; on
    /// failure restore the snapshot. Nothing pending: nothing is stopped.
    public func migrate(sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = config
        let m = try migrator(c)
        var pending: [SQLFile] = []
        var snapshotName = "", snapshotDB = ""
        var applied: [String] = []
        // A look first, without the clients stopped: nothing to do is the common case.
        let check = DatabaseOperation(
            name: "migrate", clients: .keepRunning,
            critical: { [self] ctx in
                try ctx.recorder.step("check connectivity") {
                    let conn = try endpoint(c).connect(deadline: .after(seconds: 5))
                    defer { conn.close() }
                    let version = (try? conn.scalar("SHOW server_version", deadline: .after(seconds: 5))) ?? nil
                    pending = try m.pending(conn)
                    return "PostgreSQL \(version ?? "?") at \(endpoint(c).host):\(c.postgres.port), database \(ctx.database); \(pending.count) pending migration\(pending.count == 1 ? "" : "s")"
                }
                if pending.isEmpty && m.command.isEmpty {
                    try ctx.recorder.step("migrate") { "nothing to migrate (\(m.files.count) applied)" }
                }
            },
            onFailure: { _, _ in .init(message: "nothing was migrated.", restartClients: true, code: .connection) },
            finish: { ctx in let db = ctx.database; return { $0.database = db; $0.applied = [] } })
        let first = try execute(check, sink: sink)
        guard !pending.isEmpty || !m.command.isEmpty else { return first }

        let op = DatabaseOperation(
            name: "migrate", clients: .stopAround,
            prepare: { [self] ctx in
                snapshotName = try automaticSnapshotName(ctx.admin, ctx.database)
                snapshotDB = try DatabaseNames.snapshot(snapshotName, for: ctx.database)
            },
            critical: { [self] ctx in
                try ctx.recorder.step("snapshot") {
                    let method = try takeSnapshot(ctx.admin, of: ctx.database, into: snapshotDB, name: snapshotName, kind: "auto")
                    return "\(snapshotName) (file_copy_method=\(method))"
                }
                let conn = try endpoint(ctx.config).connect()
                defer { conn.close() }
                try ctx.recorder.step("migrate") {
                    let rep = try m.migrate(conn)
                    applied = rep.applied
                    return rep.summary
                }
            },
            onFailure: { ctx, _ in
                guard ctx.did("snapshot") else {
                    return .init(message: "no snapshot was taken and nothing was migrated.", restartClients: true, code: .migrationFailed)
                }
                do {
                    try ctx.recorder.step("restore snapshot") {
                        try ctx.admin.drop(ctx.database)
                        let method = try ctx.admin.clone(snapshotDB, to: ctx.database, exclusive: false)
                        return "\(ctx.database) from \(snapshotName) (file_copy_method=\(method))"
                    }
                    return .init(message: "the database was restored to snapshot \(snapshotName), taken just before migrating: its schema and data are as they were.",
                                 restartClients: true, code: .migrationFailed)
                } catch {
                    return .init(message: "restoring snapshot \(snapshotName) failed too: \(error)\n  to recover: run 'sagedev db restore \(snapshotName)'.",
                                 restartClients: false, code: .migrationFailed)
                }
            },
            finish: { [self] ctx in
                try ctx.recorder.step("prune snapshots") {
                    let removed = try pruneAutomaticSnapshots(ctx.admin, ctx.database)
                    return removed.isEmpty ? "kept the last \(DatabaseManager.automaticSnapshotsKept) automatic snapshots" : "removed \(removed.joined(separator: ", "))"
                }
                let db = ctx.database
                return { $0.database = db; $0.snapshot = snapshotName; $0.applied = applied }
            })
        return try execute(op, sink: sink)
    }

    private func automaticSnapshotName(_ admin: ClusterAdmin, _ db: String) throws -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd-HHmmss"
        let base = "auto-" + f.string(from: Date())
        var name = base, n = 2
        while try admin.exists(DatabaseNames.snapshot(name, for: db)) { name = "\(base)-\(n)"; n += 1 }
        return name
    }

    private func pruneAutomaticSnapshots(_ admin: ClusterAdmin, _ db: String) throws -> [String] {
        let autos = try snapshotList(admin, db).filter { $0.kind == "auto" }
            .sorted { $0.created > $1.created }
        var removed: [String] = []
        for s in autos.dropFirst(DatabaseManager.automaticSnapshotsKept) {
            try admin.drop(s.database)
            removed.append(s.name)
        }
        return removed
    }

    /// Copies `db` into the snapshot database `target`, labels it and closes it to connections. Returns the
    /// file_copy_method used.
    private func takeSnapshot(_ admin: ClusterAdmin, of db: String, into target: String, name: String, kind: String) throws -> String {
        let method = try admin.clone(db, to: target, exclusive: true)
        try admin.setLabel(target, DatabaseLabel(kind: "snapshot", fields: ["kind": kind, "name": name, "created": String(wallClockSeconds())]))
        try admin.allowConnections(target, false)
        return method
    }

    // MARK: snapshots

    public struct Snapshot: Codable, Sendable, Equatable {
        public var name: String
        public var database: String
        public var kind: String
        public var created: Double
        public var bytes: Int
    }

    func snapshotList(_ admin: ClusterAdmin, _ db: String) throws -> [Snapshot] {
        let prefix = DatabaseNames.snapshotPrefix(for: db)
        return try admin.databases(prefix: prefix).map { d in
            Snapshot(name: d.label?.fields["name"] ?? String(d.name.dropFirst(prefix.count)), database: d.name,
                     kind: d.label?.fields["kind"] ?? "manual", created: Double(d.label?.fields["created"] ?? "") ?? 0, bytes: d.bytes)
        }.sorted { $0.created < $1.created }
    }

    public func snapshots() throws -> [Snapshot] {
        let c = config
        return try withAdmin(c) { try snapshotList($0, c.postgres.database) }
    }

    /// Copies the app database into snapshot `name` (its clients are stopped meanwhile: the copy needs the
    /// database alone).
    public func snapshot(_ name: String, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let target = try DatabaseNames.snapshot(name, for: config.postgres.database)
        let op = DatabaseOperation(
            name: "db snapshot", clients: .stopAround,
            prepare: { ctx in
                if try ctx.admin.exists(target) {
                    throw DatabaseError(.snapshot, "snapshot \"\(name)\" already exists; pick another name or remove it with 'sagedev db drop-snapshot \(name)'")
                }
            },
            critical: { [self] ctx in
                try ctx.recorder.step("snapshot") {
                    let method = try takeSnapshot(ctx.admin, of: ctx.database, into: target, name: name, kind: "manual")
                    return "\(ctx.database) → \(name) (file_copy_method=\(method))"
                }
            },
            onFailure: { ctx, _ in
                if ctx.did("stop apps") { try? ctx.admin.drop(target) }
                return .init(message: "no snapshot was taken; the database was not touched.", restartClients: true, code: .snapshot)
            },
            finish: { ctx in let db = ctx.database; return { $0.database = db; $0.snapshot = name } })
        return try execute(op, sink: sink)
    }

    /// Replaces the app database with a copy of snapshot `name` (the snapshot stays, for another restore): the
    /// copy is made under a temporary name, the clients of postgres are stopped, and the copy is swapped in.
    public func restore(_ name: String, keepCache: Bool = false, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let db = config.postgres.database
        let source = try DatabaseNames.snapshot(name, for: db)
        let incoming = DatabaseNames.incoming(for: db)
        let op = swapOperation(name: "db restore", incoming: incoming, keepCache: keepCache, code: .snapshot,
                               build: { [self] ctx in
            guard try ctx.admin.exists(source) else {
                let known = try snapshotList(ctx.admin, db).map(\.name)
                throw DatabaseError(.snapshot, "there is no snapshot \"\(name)\"" + (known.isEmpty ? "; take one with 'sagedev db snapshot NAME'" : "; the snapshots are: \(known.joined(separator: ", "))"))
            }
            try ctx.recorder.step("copy snapshot") {
                try ctx.admin.drop(incoming)
                let method = try ctx.admin.clone(source, to: incoming, exclusive: false)
                return "\(name) → \(incoming) (STRATEGY FILE_COPY, file_copy_method=\(method))"
            }
        }, fill: { $0.database = db; $0.snapshot = name })
        return try execute(op, sink: sink)
    }

    /// An operation that builds a database under a temporary name (without stopping anyone), then stops the
    /// clients of postgres, swaps it in, flushes Valkey and starts them again. A failure before the swap leaves
    /// the app database as it was.
    private func swapOperation(name: String, incoming: String, keepCache: Bool, code: DatabaseError.Code,
                               build: @escaping (OperationContext) throws -> Void,
                               fill: @escaping @Sendable (inout DatabaseReport) -> Void) -> DatabaseOperation {
        var swapped = false
        return DatabaseOperation(
            name: name, clients: .stopAround,
            prepare: build,
            critical: { [self] ctx in
                let aside = try swapIn(ctx, incoming)
                swapped = true
                try ctx.recorder.step("flush cache") { keepCache ? "kept (--keep-cache)" : try flushCache(ctx.config) }
                if let aside { dropInBackground(aside) }
            },
            onFailure: { ctx, _ in
                if swapped {
                    return .init(message: "the database \(ctx.database) was replaced, but Valkey was not flushed; flush it or run the command again.",
                                 restartClients: true, code: code)
                }
                try? ctx.admin.drop(incoming)
                return .init(message: "the database \(ctx.database) was not touched; fix the cause above and run the command again.",
                             restartClients: true, code: code)
            },
            finish: { _ in fill })
    }

    public func dropSnapshot(_ name: String, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let target = try DatabaseNames.snapshot(name, for: config.postgres.database)
        let op = DatabaseOperation(
            name: "db drop-snapshot", clients: .keepRunning,
            critical: { ctx in
                guard try ctx.admin.exists(target) else { throw DatabaseError(.snapshot, "there is no snapshot \"\(name)\"; see 'sagedev db snapshots'") }
                try ctx.recorder.step("drop snapshot") { try ctx.admin.drop(target); return name }
            },
            onFailure: { _, _ in .init(message: "nothing else was changed.", restartClients: true, code: .snapshot) },
            finish: { _ in { $0.snapshot = name } })
        return try execute(op, sink: sink)
    }

    // MARK: backups

    func backups(_ c: Config) -> BackupStore {
        let client = postgresClient
        return BackupStore(directory: paths.backups, environmentPath: environment["PATH"]) { tool in try client(tool, c) }
    }

    /// A gzip-compressed plain `pg_dump` of the app database in .sagedev/backups; the newest 7 are kept.
    public func backup(sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        var file = ""
        let op = DatabaseOperation(
            name: "db backup", clients: .keepRunning,
            critical: { [self] ctx in
                let store = backups(ctx.config)
                try ctx.recorder.step("dump") {
                    let (path, bytes) = try store.dump(config: ctx.config)
                    file = path
                    return "\(path) (\(formatBytes(bytes)))"
                }
                try ctx.recorder.step("retention") {
                    let removed = try store.prune(keep: BackupStore.kept)
                    return removed.isEmpty ? "kept every backup (at most \(BackupStore.kept))" : "removed \(removed.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))"
                }
            },
            onFailure: { _, _ in .init(message: "the database was not touched.", restartClients: true, code: .backup) },
            finish: { _ in let f = file; return { $0.file = f } })
        return try execute(op, sink: sink)
    }

    /// Restores a backup into a scratch database, then swaps it in for the app database: a backup that fails to
    /// load leaves the app database untouched.
    public func restoreBackup(_ file: String, keepCache: Bool = false, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = config
        let db = c.postgres.database
        let store = backups(c)
        let path = try store.resolve(file)
        let scratch = DatabaseNames.restoreScratch(for: db)
        let op = swapOperation(name: "db restore-backup", incoming: scratch, keepCache: keepCache, code: .backup,
                               build: { ctx in
            try ctx.recorder.step("load") {
                try ctx.admin.drop(scratch)
                try ctx.admin.createEmpty(scratch)
                do { try store.load(path, into: scratch, config: ctx.config) } catch { try? ctx.admin.drop(scratch); throw error }
                return "\(path) into \(scratch)"
            }
        }, fill: { $0.file = path; $0.database = db })
        return try execute(op, sink: sink)
    }
}
