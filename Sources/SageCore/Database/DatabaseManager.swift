import Foundation
import SageSystem

/// The database operations of a project: the migrate-and-seed step before the apps start, `reset-db`,
/// `seed`, `migrate`, snapshots and backups. The daemon owns one (it holds the engine, so it can stop and start
/// the backend); the CLI reaches it through the control socket. Operations that change databases are serialised
/// across processes with a file lock on `.sagedev/run/reset.lock`.
public final class DatabaseManager: @unchecked Sendable {
    public struct ResetOptions: Sendable, Equatable {
        /// Leave Valkey's data alone (the default flushes it: it caches what the database held).
        public var keepCache: Bool
        /// Seed the new database (from the template, or by replay); false leaves it migrated only.
        public var seed: Bool
        /// Replay migrations and seeds even when the template is current, and rebuild the template.
        public var replay: Bool
        public init(keepCache: Bool = false, seed: Bool = true, replay: Bool = false) {
            self.keepCache = keepCache; self.seed = seed; self.replay = replay
        }
    }

    /// How many automatic snapshots `migrate` keeps.
    public static let automaticSnapshotsKept = 3
    /// How long an operation waits for another one to finish.
    public var lockTimeoutSeconds: Double = 1800
    /// How long the backend may take to be healthy again.
    public var backendStartSeconds: Double = 180

    public let paths: ProjectPaths
    public let logs: LogStore
    private let currentConfig: @Sendable () -> Config
    private let backend: BackendControl?
    private let runJob: (@Sendable (String, Config, Deadline) throws -> CompletedProcess)?
    /// How to run pg_dump and psql against the server (the runtime decides: host toolchain or compose exec).
    private let postgresClient: @Sendable (String, Config) throws -> PostgresClientCommand
    private let environment: [String: String]
    /// Tells postgres's probe that the app database may vanish for a moment.
    public let activity: DatabaseActivity

    /// - config: the configuration in force (read at the start of each operation).
    /// - backend: stops and starts the backend around resets and restores; nil when there is none to manage.
    /// - runJob: runs the migrate and seed commands (the runtime's one-shot job in the backend's context).
    public init(paths: ProjectPaths, logs: LogStore, environment: [String: String], config: @escaping @Sendable () -> Config,
                backend: BackendControl?, runJob: (@Sendable (String, Config, Deadline) throws -> CompletedProcess)?,
                postgresClient: @escaping @Sendable (String, Config) throws -> PostgresClientCommand,
                activity: DatabaseActivity = DatabaseActivity()) {
        self.paths = paths; self.logs = logs; self.environment = environment; self.currentConfig = config
        self.backend = backend; self.runJob = runJob; self.postgresClient = postgresClient; self.activity = activity
        keepsSpare = !["off", "0", "false", "no"].contains((environment["SAGEDEV_RESET_SPARE"] ?? "").lowercased())
    }

    /// Copies the template into the spare in the background (under the operation lock, so a reset that comes
    /// meanwhile waits for it and then renames it into place). Only when the template is current.
    public func prepareSpareInBackground() {
        guard keepsSpare else { return }
        spareQueue.async { [self] in
            let c = currentConfig()
            let r = StepRecorder("spare", sink: { _ in }, logs: logs)
            do {
                let lock = try self.lock(nil)
                defer { lock.release() }
                let admin = try ClusterAdmin.connect(endpoint(c))
                defer { admin.close() }
                let key = try templateKey(c)
                let t = TemplateManager(database: c.postgres.database)
                guard try t.status(admin, key: key) == .current else { return }
                let started = monotonicNanoseconds()
                if try t.prepareSpare(admin, key: key) {
                    r.note("copied \(t.templateName) to \(t.spareName) for the next reset in \(DatabaseStep.format(millisecondsSince(started)))")
                }
            } catch {
                r.note("could not prepare the spare copy (the next reset copies the template itself): \(error)")
            }
        }
    }

    // MARK: pieces

    func endpoint(_ c: Config) -> DatabaseEndpoint { DatabaseEndpoint(config: c) }

    func commandRunner(_ c: Config) -> DatabaseCommandRunner? {
        guard let runJob else { return nil }
        return { command, deadline in try runJob(command, c, deadline) }
    }


    private let checksums = SQLChecksumCache()
    /// Whether resets keep a spare copy of the template ready (SAGEDEV_RESET_SPARE=off turns it off).
    public var keepsSpare: Bool
    private let spareQueue = DispatchQueue(label: "sagedev.database.spare")

    func migrator(_ c: Config) throws -> Migrator {
        let m = try Migrator(config: c, runCommand: commandRunner(c))
        checksums.remember(m.files)
        return m
    }
    func seeder(_ c: Config) throws -> Seeder {
        let s = try Seeder(config: c, runCommand: commandRunner(c))
        checksums.remember(s.files)
        return s
    }

    /// The key the template must carry to be current, from cached checksums (the files are read only when changed).
    public func templateKey(_ c: Config) throws -> String {
        TemplateKey.compute(migrationDigests: try checksums.digests(directory: SQLFiles.resolve(c.migrationsDirectory, in: c.projectDirectory)),
                            seedDigests: try checksums.digests(directory: SQLFiles.resolve(c.seedsDirectory, in: c.projectDirectory)),
                            migrateCommand: c.migrateCommand, seedCommand: c.seedCommand)
    }

    private func lock(_ r: StepRecorder?) throws -> OperationLock {
        try paths.ensure()
        let t = monotonicNanoseconds()
        if let l = try FileLock.tryAcquire(path: paths.resetLock) { try? l.writeOwner(); return OperationLock(l, activity: activity) }
        r?.note("waiting for another database operation to finish")
        do {
            let l = try FileLock.acquire(path: paths.resetLock, deadline: .after(seconds: lockTimeoutSeconds))
            try? l.writeOwner()
            r?.record("wait", millisecondsSince(t), "waited for another database operation")
            return OperationLock(l, activity: activity)
        } catch {
            throw DatabaseError(.busy, "another database operation has held \(paths.resetLock) for over \(Int(lockTimeoutSeconds)) s: \(error)")
        }
    }

    /// Creates the app database when it is missing (a reset that failed after dropping it, a fresh cluster).
    private func ensureAppDatabase(_ c: Config) throws -> Bool {
        let admin = try ClusterAdmin.connect(endpoint(c))
        defer { admin.close() }
        if try admin.exists(c.postgres.database) { return false }
        try admin.createEmpty(c.postgres.database)
        return true
    }

    /// Runs `body` under the operation lock with an admin connection (closed before the lock is released). `body`
    /// may release the lock early, to let the next operation in while the backend starts.
    private func locked<T>(_ c: Config, _ r: StepRecorder, _ body: (OperationLock, ClusterAdmin) throws -> T) throws -> T {
        let lock = try self.lock(r)
        defer { lock.release() }
        let admin = try ClusterAdmin.connect(endpoint(c))
        defer { admin.close() }
        return try body(lock, admin)
    }

    /// The "stop backend" step: stops the backend if it was running, so the operation has the database alone.
    /// Returns whether it stopped it.
    @discardableResult
    private func stopBackend(_ r: StepRecorder, wasRunning: Bool) throws -> Bool {
        var stopped = false
        try r.step("stop backend") {
            guard let backend, wasRunning else { return "not running" }
            try backend.stopBackend()
            stopped = true
            return "stopped"
        }
        return stopped
    }

    /// The "start backend" step: starts the backend again if it was running before the operation, and waits until
    /// it is healthy.
    private func startBackend(_ r: StepRecorder, wasRunning: Bool) throws {
        try r.step("start backend") {
            guard let backend, wasRunning else { return "not started (it was not running)" }
            try backend.startBackend(deadline: .after(seconds: backendStartSeconds))
            return "healthy"
        }
    }

    /// Copies `db` into the snapshot database `target`, labels it and closes it to connections. Returns the
    /// file_copy_method used.
    private func takeSnapshot(_ admin: ClusterAdmin, of db: String, into target: String, name: String, kind: String) throws -> String {
        let method = try admin.clone(db, to: target, exclusive: true)
        try admin.setLabel(target, DatabaseLabel(kind: "snapshot", fields: ["kind": kind, "name": name, "created": String(wallClockSeconds())]))
        try admin.allowConnections(target, false)
        return method
    }

    private func flushCache(_ c: Config) throws -> String {
        let host = Stack.dialHost(c)
        do {
            let v = try ValkeyConnection.connect(host: host, port: c.valkey.port, user: nil,
                                                 password: c.valkey.password.isEmpty ? nil : c.valkey.password,
                                                 deadline: .after(seconds: 5))
            defer { v.close() }
            let reply = try v.command(["FLUSHALL"], deadline: .after(seconds: 30))
            if let e = reply.errorMessage { throw DatabaseError(.cache, "FLUSHALL on Valkey was refused: \(e)") }
            return "FLUSHALL on Valkey"
        } catch let e as DatabaseError { throw e } catch {
            throw DatabaseError(.cache, "cannot flush Valkey at \(host):\(c.valkey.port): \(error); check that it runs ('sagedev status'), or pass --keep-cache")
        }
    }

    // MARK: before the apps start

    /// The step the engine runs after postgres and valkey are healthy and before the backend starts: apply pending
    /// migrations (files, then the command), seed a database that was never seeded, and make the template when it
    /// is missing or stale and the database was just built from scratch. Returns lines for the `up` output.
    public func beforeApps(_ c: Config) throws -> [String] {
        let r = StepRecorder("up", sink: { _ in }, logs: logs)
        let lock = try self.lock(r)
        defer { lock.release() }
        var lines: [String] = []
        let created = try ensureAppDatabase(c)
        if created { lines.append("created database \(c.postgres.database)") }
        let m = try migrator(c), s = try seeder(c)
        let conn = try endpoint(c).connect()
        let mr: Migrator.Report, sr: Seeder.Report?
        do {
            defer { conn.close() }
            do { mr = try m.migrate(conn) } catch { r.note("migrate failed: \(error)"); throw error }
            lines.append("migrate: " + mr.summary)
            do { sr = try s.seedIfUnseeded(conn) } catch { r.note("seed failed: \(error)"); throw error }
            if let sr { lines.append("seed: " + sr.summary) }
        }
        let key = TemplateKey.compute(migrations: m.files, seeds: s.files, migrateCommand: c.migrateCommand, seedCommand: c.seedCommand)
        let admin = try ClusterAdmin.connect(endpoint(c))
        defer { admin.close() }
        let template = TemplateManager(database: c.postgres.database)
        let status = try template.status(admin, key: key)
        // Only a database that this run migrated and seeded from nothing is a faithful template; a database with a
        // developer's own rows in it is not, so a stale template then waits for the next reset-db to rebuild it.
        let pristine = sr != nil || (s.isEmpty && mr.alreadyApplied == 0 && (!mr.applied.isEmpty || mr.commandRan))
        if status == .current {
            lines.append("template: \(template.templateName) is current")
        } else if pristine {
            let t = monotonicNanoseconds()
            let method = try template.refresh(admin, key: key)
            lines.append("template: \(status == .missing ? "created" : "refreshed") \(template.templateName) in \(DatabaseStep.format(millisecondsSince(t))) (file_copy_method=\(method))")
        } else {
            lines.append("template: \(template.templateName) is \(status.description); the next 'sagedev reset-db' rebuilds it")
        }
        for l in lines { r.note(l) }
        prepareSpareInBackground()
        return lines
    }

    // MARK: reset-db

    /// Stop the backend, drop the app database, recreate it from the template (or by replaying migrations and seeds,
    /// refreshing the template), flush Valkey, start the backend. Each step is timed.
    public func reset(_ options: ResetOptions = ResetOptions(), sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let db = c.postgres.database
        let r = StepRecorder("reset-db", sink: sink, logs: logs)
        let template = TemplateManager(database: db)
        let lock = try self.lock(r)
        defer { lock.release() }
        var source = "template", method = ""
        var dropped = false
        let wasRunning = backend?.isBackendRunning ?? false
        var backendStopped = false
        do {
            let admin = try ClusterAdmin.connect(endpoint(c))
            defer { admin.close() }
            var status = TemplateManager.Status.missing
            var key = ""
            try r.step("check template") {
                key = try templateKey(c)
                status = try template.status(admin, key: key)
                if !options.seed { return "\(status.description); not used (--no-seed): replaying migrations only" }
                if options.replay { return "\(status.description); not used (--replay): replaying migrations and seeds" }
                return status == .current ? "\(template.templateName) is current" : "\(template.templateName) is \(status.description): replaying migrations and seeds"
            }
            let fromTemplate = status == .current && options.seed && !options.replay
            source = fromTemplate ? "template" : "replay"
            backendStopped = try stopBackend(r, wasRunning: wasRunning)
            try r.step("drop database") {
                try admin.drop(db)
                dropped = true
                return "DROP DATABASE \(db) WITH (FORCE)"
            }
            if fromTemplate {
                try r.step("create database") {
                    if keepsSpare, (try? template.spareIsReady(admin, key: key)) == true {
                        do {
                            try template.takeSpare(admin)
                            method = "spare"
                            return "from template \(template.templateName) (its copy made ahead of time, \(template.spareName), renamed into place)"
                        } catch {
                            r.note("the spare copy could not be renamed into place (\(error)); copying the template instead")
                        }
                    }
                    method = try template.recreate(admin)
                    return "from template \(template.templateName) (STRATEGY FILE_COPY, file_copy_method=\(method))"
                }
            } else {
                try r.step("create database") {
                    try admin.createEmpty(db)
                    return "empty, from template0"
                }
                let m = try migrator(c), s = try seeder(c)
                let conn = try endpoint(c).connect()
                do {
                    defer { conn.close() }
                    try r.step("migrate") { try m.migrate(conn).summary }
                    try r.step("seed") {
                        if options.seed { return try s.seedAll(conn).summary }
                        try s.markSkipped(conn)
                        return "skipped (--no-seed)"
                    }
                }
                if options.seed {
                    try r.step("refresh template") {
                        method = try template.refresh(admin, key: key)
                        return "\(template.templateName) from \(db) (file_copy_method=\(method))"
                    }
                }
            }
            try r.step("flush cache") { options.keepCache ? "kept (--keep-cache)" : try flushCache(c) }
        } catch {
            let failedAt = r.current ?? "prepare"
            var m = "reset-db failed at step '\(failedAt)': \(error)"
            m += "\n  the template \(template.templateName) was left as it was"
            if dropped {
                m += "; the database \(db) may be missing or incomplete, so the backend was left stopped."
                m += "\n  to recover: fix the cause above, then run 'sagedev reset-db --yes' again (or 'sagedev db restore NAME' for a snapshot)."
            } else {
                m += "; the database \(db) was not touched."
                if backendStopped, let backend { try? backend.startBackend(deadline: .after(seconds: backendStartSeconds)) }
                m += "\n  to recover: fix the cause above and run 'sagedev reset-db --yes' again."
            }
            r.note(m)
            throw DatabaseError((error as? DatabaseError)?.code ?? .clone, m, file: (error as? DatabaseError)?.file,
                                line: (error as? DatabaseError)?.line, sqlState: (error as? DatabaseError)?.sqlState)
        }
        // The database is done: let the next operation in while the backend starts.
        lock.release()
        var backendMs = 0.0
        do {
            let t = monotonicNanoseconds()
            try startBackend(r, wasRunning: wasRunning)
            backendMs = wasRunning ? millisecondsSince(t) : 0
        } catch {
            let m = "reset-db: the database \(db) was reset (from \(source)), but the backend did not start again: \(error)\n  to recover: fix the backend, then run 'sagedev restart backend'"
            r.note(m)
            throw DatabaseError(.backend, m)
        }
        let report = r.report {
            $0.database = db; $0.source = source; $0.fileCopyMethod = method
            $0.backendStartMs = (backendMs * 10).rounded() / 10; $0.template = template.templateName
        }
        r.note("done in \(DatabaseStep.format(report.milliseconds)) from \(source == "template" ? "template \(template.templateName)" : "a replay of migrations and seeds")")
        if options.seed { prepareSpareInBackground() }
        return report
    }

    // MARK: seed, migrate

    /// Applies every seed file and the seed command again (the backend keeps running).
    public func seed(sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let r = StepRecorder("seed", sink: sink, logs: logs)
        let lock = try self.lock(r)
        defer { lock.release() }
        let s = try seeder(c)
        guard !s.isEmpty else {
            try r.step("seed") { "nothing to seed: no *.sql files in \(c.seedsDirectory) and no SAGEDEV_SEED_COMMAND" }
            return r.report { $0.database = c.postgres.database }
        }
        let conn = try endpoint(c).connect()
        defer { conn.close() }
        try r.step("seed") { try s.seedAll(conn).summary }
        return r.report { $0.database = c.postgres.database }
    }

    /// Check connectivity, take an automatic snapshot, apply pending migrations; on failure restore the snapshot.
    public func migrate(sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let db = c.postgres.database
        let r = StepRecorder("migrate", sink: sink, logs: logs)
        let lock = try self.lock(r)
        defer { lock.release() }
        let m = try migrator(c)
        var pending: [SQLFile] = []
        try r.step("check connectivity") {
            let conn = try endpoint(c).connect(deadline: .after(seconds: 5))
            defer { conn.close() }
            let version = (try? conn.scalar("SHOW server_version", deadline: .after(seconds: 5))) ?? nil
            pending = try m.pending(conn)
            return "PostgreSQL \(version ?? "?") at \(endpoint(c).host):\(c.postgres.port), database \(db); \(pending.count) pending migration\(pending.count == 1 ? "" : "s")"
        }
        guard !pending.isEmpty || !m.command.isEmpty else {
            try r.step("migrate") { "nothing to migrate (\(m.files.count) applied)" }
            return r.report { $0.database = db; $0.applied = [] }
        }
        let wasRunning = backend?.isBackendRunning ?? false
        let admin = try ClusterAdmin.connect(endpoint(c))
        defer { admin.close() }
        let snapshotName = try automaticSnapshotName(admin, db)
        let snapshotDB = try DatabaseNames.snapshot(snapshotName, for: db)
        var report: Migrator.Report?
        var failure: Error?
        try stopBackend(r, wasRunning: wasRunning)
        do {
            try r.step("snapshot") {
                let method = try takeSnapshot(admin, of: db, into: snapshotDB, name: snapshotName, kind: "auto")
                return "\(snapshotName) (file_copy_method=\(method))"
            }
            let conn = try endpoint(c).connect()
            defer { conn.close() }
            try r.step("migrate") {
                let rep = try m.migrate(conn)
                report = rep
                return rep.summary
            }
        } catch {
            failure = error
        }
        if let failure {
            var m = "migrate failed: \(failure)"
            let snapshotTaken = r.steps.contains { $0.name == "snapshot" }
            if snapshotTaken {
                do {
                    try r.step("restore snapshot") {
                        try admin.drop(db)
                        let method = try admin.clone(snapshotDB, to: db, exclusive: false)
                        return "\(db) from \(snapshotName) (file_copy_method=\(method))"
                    }
                    m += "\n  the database was restored to snapshot \(snapshotName), taken just before migrating: its schema and data are as they were."
                } catch {
                    m += "\n  restoring snapshot \(snapshotName) failed too: \(error)\n  to recover: run 'sagedev db restore \(snapshotName)'."
                }
            } else {
                m += "\n  no snapshot was taken and nothing was migrated."
            }
            lock.release()
            if wasRunning, backend != nil {
                do { try startBackend(r, wasRunning: wasRunning) } catch { m += "\n  the backend did not start again: \(error)" }
            }
            r.note(m)
            let d = failure as? DatabaseError
            throw DatabaseError(d?.code ?? .migrationFailed, m, file: d?.file, line: d?.line, column: d?.column, sqlState: d?.sqlState, hint: d?.hint)
        }
        try r.step("prune snapshots") {
            let removed = try pruneAutomaticSnapshots(admin, db)
            return removed.isEmpty ? "kept the last \(DatabaseManager.automaticSnapshotsKept) automatic snapshots" : "removed \(removed.joined(separator: ", "))"
        }
        lock.release()
        try startBackend(r, wasRunning: wasRunning)
        return r.report { $0.database = db; $0.snapshot = snapshotName; $0.applied = report?.applied ?? [] }
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
        let c = currentConfig()
        let admin = try ClusterAdmin.connect(endpoint(c))
        defer { admin.close() }
        return try snapshotList(admin, c.postgres.database)
    }

    /// Copies the app database into snapshot `name` (the backend is stopped meanwhile: the copy needs the database alone).
    public func snapshot(_ name: String, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let db = c.postgres.database
        let target = try DatabaseNames.snapshot(name, for: db)
        let r = StepRecorder("db snapshot", sink: sink, logs: logs)
        return try locked(c, r) { lock, admin in
            if try admin.exists(target) {
                throw DatabaseError(.snapshot, "snapshot \"\(name)\" already exists; pick another name or remove it with 'sagedev db drop-snapshot \(name)'")
            }
            let wasRunning = backend?.isBackendRunning ?? false
            try stopBackend(r, wasRunning: wasRunning)
            var failure: Error?
            do {
                try r.step("snapshot") {
                    let method = try takeSnapshot(admin, of: db, into: target, name: name, kind: "manual")
                    return "\(db) → \(name) (file_copy_method=\(method))"
                }
            } catch { failure = error; try? admin.drop(target) }
            lock.release()
            try startBackend(r, wasRunning: wasRunning)
            if let failure { throw failure }
            return r.report { $0.database = db; $0.snapshot = name }
        }
    }

    /// Replaces the app database with a copy of snapshot `name` (the snapshot stays, for another restore).
    public func restore(_ name: String, keepCache: Bool = false, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let db = c.postgres.database
        let source = try DatabaseNames.snapshot(name, for: db)
        let r = StepRecorder("db restore", sink: sink, logs: logs)
        return try locked(c, r) { lock, admin in
            guard try admin.exists(source) else {
                let known = try snapshotList(admin, db).map(\.name)
                throw DatabaseError(.snapshot, "there is no snapshot \"\(name)\"" + (known.isEmpty ? "; take one with 'sagedev db snapshot NAME'" : "; the snapshots are: \(known.joined(separator: ", "))"))
            }
            let wasRunning = backend?.isBackendRunning ?? false
            try stopBackend(r, wasRunning: wasRunning)
            do {
                try r.step("drop database") { try admin.drop(db); return "DROP DATABASE \(db) WITH (FORCE)" }
                try r.step("create database") {
                    let method = try admin.clone(source, to: db, exclusive: false)
                    return "from snapshot \(name) (STRATEGY FILE_COPY, file_copy_method=\(method))"
                }
                try r.step("flush cache") { keepCache ? "kept (--keep-cache)" : try flushCache(c) }
            } catch {
                let m = "db restore failed at step '\(r.current ?? "?")': \(error)\n  snapshot \(name) is intact; the backend was left stopped. To recover: fix the cause, then run 'sagedev db restore \(name)' again."
                r.note(m)
                throw DatabaseError((error as? DatabaseError)?.code ?? .snapshot, m)
            }
            lock.release()
            try startBackend(r, wasRunning: wasRunning)
            return r.report { $0.database = db; $0.snapshot = name }
        }
    }

    public func dropSnapshot(_ name: String, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let target = try DatabaseNames.snapshot(name, for: c.postgres.database)
        let r = StepRecorder("db drop-snapshot", sink: sink, logs: logs)
        return try locked(c, r) { _, admin in
            guard try admin.exists(target) else { throw DatabaseError(.snapshot, "there is no snapshot \"\(name)\"; see 'sagedev db snapshots'") }
            try r.step("drop snapshot") { try admin.drop(target); return name }
            return r.report { $0.snapshot = name }
        }
    }

    // MARK: backups

    func backups(_ c: Config) -> BackupStore {
        let client = postgresClient
        return BackupStore(directory: paths.backups, environmentPath: environment["PATH"]) { tool in try client(tool, c) }
    }

    /// A gzip-compressed plain `pg_dump` of the app database in .sagedev/backups; the newest 7 are kept.
    public func backup(sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let r = StepRecorder("db backup", sink: sink, logs: logs)
        let lock = try self.lock(r)
        defer { lock.release() }
        let store = backups(c)
        var file = ""
        try r.step("dump") {
            let (path, bytes) = try store.dump(config: c)
            file = path
            return "\(path) (\(formatBytes(bytes)))"
        }
        try r.step("retention") {
            let removed = try store.prune(keep: BackupStore.kept)
            return removed.isEmpty ? "kept every backup (at most \(BackupStore.kept))" : "removed \(removed.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))"
        }
        return r.report { $0.file = file }
    }

    /// Restores a backup into a scratch database, then swaps it in for the app database: a backup that fails to
    /// load leaves the app database untouched.
    public func restoreBackup(_ file: String, keepCache: Bool = false, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = currentConfig()
        let db = c.postgres.database
        let r = StepRecorder("db restore-backup", sink: sink, logs: logs)
        let lock = try self.lock(r)
        defer { lock.release() }
        let store = backups(c)
        let path = try store.resolve(file)
        let admin = try ClusterAdmin.connect(endpoint(c))
        defer { admin.close() }
        let scratch = DatabaseNames.restoreScratch(for: db)
        try r.step("load") {
            try admin.drop(scratch)
            try admin.createEmpty(scratch)
            do { try store.load(path, into: scratch, config: c) } catch { try? admin.drop(scratch); throw error }
            return "\(path) into \(scratch)"
        }
        let wasRunning = backend?.isBackendRunning ?? false
        try stopBackend(r, wasRunning: wasRunning)
        do {
            try r.step("swap database") {
                try admin.drop(db)
                try admin.rename(scratch, to: db)
                return "\(scratch) → \(db)"
            }
            try r.step("flush cache") { keepCache ? "kept (--keep-cache)" : try flushCache(c) }
        } catch {
            let m = "db restore-backup failed at step '\(r.current ?? "?")': \(error)\n  to recover: run 'sagedev db restore-backup \(path)' again, or 'sagedev reset-db --yes'"
            r.note(m)
            throw DatabaseError(.backup, m)
        }
        lock.release()
        try startBackend(r, wasRunning: wasRunning)
        return r.report { $0.file = path; $0.database = db }
    }
}

func formatBytes(_ n: Int) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1024 * 1024 { return "\((Double(n) / 1024 * 10).rounded() / 10) KiB" }
    return "\((Double(n) / 1048576 * 10).rounded() / 10) MiB"
}
