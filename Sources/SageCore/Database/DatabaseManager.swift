import Foundation
import SageSystem

/// The database operations of a project: the migrate-and-seed step before the apps start, `reset-db`,
/// `seed`, `migrate`, snapshots, clones and backups. The daemon owns one (it holds the engine, so it can stop and
/// start the clients of postgres); the CLI reaches it through the control socket. Operations that change the app
/// database are values (`DatabaseOperation`) run by `execute`, serialised across processes with a file lock on
/// `.sagedev/run/reset.lock`. Clones take no such lock: they run side by side.
public final class DatabaseManager: @unchecked Sendable {
    public struct ResetOptions: Sendable, Equatable {
        /// Leave Valkey's data alone (the default flushes it: it caches what the database held).
        public var keepCache: Bool
        /// Seed the new database (from the template, or by replay); false leaves it migrated only.
        public var seed: Bool
        /// Replay migrations and seeds even when the template is current, and rebuild the template.
        public var replay: Bool
        /// Stop the clients of postgres around the swap and start them again (the apps otherwise keep running and
        /// only lose their database sessions).
        public var restartApps: Bool
        public init(keepCache: Bool = false, seed: Bool = true, replay: Bool = false, restartApps: Bool = false) {
            self.keepCache = keepCache; self.seed = seed; self.replay = replay; self.restartApps = restartApps
        }
    }

    /// How many automatic snapshots `migrate` keeps.
    public static let automaticSnapshotsKept = 3
    /// How long an operation waits for another one to finish.
    public var lockTimeoutSeconds: Double = 1800
    /// How long the clients of postgres may take to be healthy again.
    public var clientsStartSeconds: Double = 180

    public let paths: ProjectPaths
    public let logs: LogStore
    private let currentConfig: @Sendable () -> Config
    let clients: PostgresClientControl?
    private let runJob: (@Sendable (String, Config, Deadline) throws -> CompletedProcess)?
    /// How to run pg_dump and psql against the server (the runtime decides: host toolchain or compose exec).
    let postgresClient: @Sendable (String, Config) throws -> PostgresClientCommand
    let environment: [String: String]
    /// Tells postgres's probe that the app database may vanish or refuse connections for a moment.
    public let activity: DatabaseActivity
    let faults: ResetFaults
    let copies: ReadyCopies
    private let fieldsCache = Locked<(at: UInt64, epoch: Int, ready: Int, clones: Int)?>(nil)
    /// Clones made or dropped (they take no operation lock): status reads the counts again after one.
    let cloneChanges = Locked(0)
    /// Where the old app databases of swaps are dropped, after the operation that set them aside has finished.
    private let dropQueue = DispatchQueue(label: "sagedev.database.drop", qos: .utility)
    private let postgresPid: @Sendable () -> Int32?
    /// Maintenance sessions and a Valkey connection kept between operations (see `IdleConnections`). Three
    /// sessions: a reset's own, the refill of the ready copies and the drop of the old database run at once.
    private let adminSessions = IdleConnections<PostgresConnectOptions, ClusterAdmin>(
        capacity: 3, isIdle: { $0.connection.isIdle }, close: { $0.close() })
    private let cacheConnections = IdleConnections<String, ValkeyConnection>(
        capacity: 1, isIdle: { $0.isIdle }, close: { $0.close() })

    /// - config: the configuration in force (read at the start of each operation).
    /// - clients: stops and starts the clients of postgres; nil when there are none to manage.
    /// - runJob: runs the migrate and seed commands (the runtime's one-shot job in the backend's context).
    /// - freeBytes: free space where the database files live (nil when unknown), checked before each ready copy.
    public init(paths: ProjectPaths, logs: LogStore, environment: [String: String], config: @escaping @Sendable () -> Config,
                clients: PostgresClientControl?, runJob: (@Sendable (String, Config, Deadline) throws -> CompletedProcess)?,
                postgresClient: @escaping @Sendable (String, Config) throws -> PostgresClientCommand,
                activity: DatabaseActivity = DatabaseActivity(),
                freeBytes: @escaping @Sendable () -> Int? = { nil },
                postgresPid: @escaping @Sendable () -> Int32? = { nil }) {
        self.paths = paths; self.logs = logs; self.environment = environment; self.currentConfig = config
        self.clients = clients; self.runJob = runJob; self.postgresClient = postgresClient; self.activity = activity
        self.postgresPid = postgresPid
        let faults = ResetFaults(environment: environment)
        self.faults = faults
        copies = ReadyCopies(target: { DatabaseManager.readyCopiesTarget(config(), environment: environment) },
                             freeBytes: { faults.freeBytes ?? freeBytes() })
    }

    /// SAGEDEV_RESET_SPARES; when it is not set, SAGEDEV_RESET_SPARE=off in the daemon's environment (the switch of
    /// earlier versions) means 0.
    static func readyCopiesTarget(_ c: Config, environment: [String: String]) -> Int {
        if c.values["SAGEDEV_RESET_SPARES"] == nil,
           ["off", "0", "false", "no"].contains((environment["SAGEDEV_RESET_SPARE"] ?? "").lowercased()) { return 0 }
        return c.resetSpares
    }

    // MARK: pieces

    var config: Config { currentConfig() }

    func endpoint(_ c: Config) -> DatabaseEndpoint { DatabaseEndpoint(config: c) }

    /// Runs `body` on a maintenance session: one kept from an earlier operation when it is idle and for the same
    /// endpoint, else a new one. The session is kept afterwards unless `body` left it broken or in a transaction.
    func withAdmin<T>(_ c: Config, deadline: Deadline = .after(seconds: 10), _ body: (ClusterAdmin) throws -> T) throws -> T {
        let e = endpoint(c)
        return try adminSessions.with(e.options(database: e.maintenanceDatabase), open: { try ClusterAdmin.connect(e, deadline: deadline) }) { admin in
            defer { _ = admin.connection.takeNotices() }
            return try body(admin)
        }
    }

    /// Closes the sessions kept between operations: postgres is stopping or restarting (a smart shutdown waits for
    /// every session). (A daemon that exits closes them with its process.)
    public func closeIdleSessions() {
        adminSessions.closeAll()
        cacheConnections.closeAll()
        activity.startupSession.close()
    }

    func commandRunner(_ c: Config) -> DatabaseCommandRunner? {
        guard let runJob else { return nil }
        return { command, deadline in try runJob(command, c, deadline) }
    }

    private let checksums = SQLChecksumCache()

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

    func lock(_ r: StepRecorder?) throws -> OperationLock {
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

    /// Creates the app database when it is missing (a fresh cluster, or one a person dropped by hand).
    private func ensureAppDatabase(_ admin: ClusterAdmin, _ c: Config) throws -> Bool {
        if try admin.exists(c.postgres.database) { return false }
        try admin.createEmpty(c.postgres.database)
        return true
    }

    func fault(_ step: String) { faults.after(step, logs: logs, postgresPid: postgresPid) }

    func flushCache(_ c: Config) throws -> String {
        let host = Stack.dialHost(c)
        do {
            let open = {
                try ValkeyConnection.connect(host: host, port: c.valkey.port, user: nil,
                                             password: c.valkey.password.isEmpty ? nil : c.valkey.password,
                                             deadline: .after(seconds: 5))
            }
            let reply = try cacheConnections.with("\(host) \(c.valkey.port) \(c.valkey.password)", open: open) { v in
                try v.command(["FLUSHALL"], deadline: .after(seconds: 30))
            }
            if let e = reply.errorMessage { throw DatabaseError(.cache, "FLUSHALL on Valkey was refused: \(e)") }
            return "FLUSHALL on Valkey"
        } catch let e as DatabaseError { throw e } catch {
            throw DatabaseError(.cache, "cannot flush Valkey at \(host):\(c.valkey.port): \(error); check that it runs ('sagedev status'), or pass --keep-cache")
        }
    }

    // MARK: the executor

    /// Runs an operation: lock, prepare, stop the clients (when it says so), the critical section; on failure its
    /// own message and policy; then, with the lock released, start the clients again and finish.
    func execute(_ op: DatabaseOperation, sink: @escaping DatabaseStepSink) throws -> DatabaseReport {
        let c = currentConfig()
        let r = StepRecorder(op.name, sink: sink, logs: logs)
        let lock = try self.lock(r)
        defer { lock.release() }
        // A session on the app database, kept from postgres's start for a database step that did not take it.
        activity.startupSession.close()
        return try withAdmin(c) { admin in try execute(op, c, r, lock, admin) }
    }

    private func execute(_ op: DatabaseOperation, _ c: Config, _ r: StepRecorder, _ lock: OperationLock, _ admin: ClusterAdmin) throws -> DatabaseReport {
        let ctx = OperationContext(config: c, recorder: r, admin: admin)
        do {
            try op.prepare(ctx)
            if op.clients == .stopAround { try stopClients(ctx) }
            try op.critical(ctx)
        } catch {
            let f = op.onFailure(ctx, error)
            var message = "\(op.name) failed at step '\(r.current ?? "prepare")': \(error)\n  " + f.message
            lock.release()
            let names = ctx.stoppedClients.map(\.rawValue).joined(separator: ", ")
            if !ctx.stoppedClients.isEmpty {
                if f.restartClients {
                    do { try startClients(ctx) } catch { message += "\n  \(names) did not start again: \(error)" }
                } else {
                    message += "\n  \(names) left stopped until the database is fixed."
                }
            }
            r.note(message)
            let d = error as? DatabaseError
            throw DatabaseError(d?.code ?? f.code, message, file: d?.file, line: d?.line, column: d?.column,
                                sqlState: d?.sqlState, hint: d?.hint)
        }
        // The database is done: let the next operation in while the clients start.
        lock.release()
        do { try startClients(ctx) } catch {
            let names = ctx.stoppedClients.map(\.rawValue).joined(separator: ", ")
            let m = "\(op.name): the database \(c.postgres.database) is done, but \(names) did not start again: \(error)\n  to recover: fix it, then run 'sagedev restart \(ctx.stoppedClients.map(\.rawValue).joined(separator: " "))'"
            r.note(m)
            throw DatabaseError(.backend, m)
        }
        let fill = try op.finish(ctx)
        return r.report { report in
            fill(&report)
            if !ctx.stoppedClients.isEmpty { report.appsStartMs = (ctx.clientsStartMilliseconds * 10).rounded() / 10 }
        }
    }

    /// The "stop apps" step: stops the clients of postgres that run, so the operation has the database alone.
    private func stopClients(_ ctx: OperationContext) throws {
        try ctx.recorder.step("stop apps") {
            let running = clients?.runningClients() ?? []
            guard let clients, !running.isEmpty else { return "none running" }
            try clients.stop(running)
            ctx.stoppedClients = running
            return "stopped \(running.map(\.rawValue).joined(separator: ", "))"
        }
    }

    /// The "start apps" step: starts the clients the operation stopped, and waits until they are healthy.
    private func startClients(_ ctx: OperationContext) throws {
        guard let clients, !ctx.stoppedClients.isEmpty else { return }
        let t = monotonicNanoseconds()
        try ctx.recorder.step("start apps") {
            try clients.start(ctx.stoppedClients, deadline: .after(seconds: clientsStartSeconds))
            return "\(ctx.stoppedClients.map(\.rawValue).joined(separator: ", ")) healthy"
        }
        ctx.clientsStartMilliseconds = millisecondsSince(t)
    }

    // MARK: swaps

    /// Puts `incoming` in the app database's place: the app database refuses new connections and its sessions
    /// end ("block connections"), then both renames commit in one transaction ("swap"). Returns the name the old
    /// database now has (nil when there was none); the caller drops it in the background.
    func swapIn(_ ctx: OperationContext, _ incoming: String) throws -> String? {
        let db = ctx.database, admin = ctx.admin, r = ctx.recorder
        let exists = try admin.exists(db)
        let aside = exists ? DatabaseNames.aside(for: db, stamp: UInt64(wallClockSeconds() * 1_000_000)) : nil
        if exists {
            try r.step("block connections") {
                let ended = try admin.closeToConnections(db)
                return "\(db) refuses new connections; ended \(ended) session\(ended == 1 ? "" : "s")"
            }
            fault("block-connections")
        }
        do {
            try r.step("swap") {
                try admin.swap(incoming, into: db, aside: aside)
                return aside.map { "\(db) → \($0), \(incoming) → \(db)" } ?? "\(incoming) → \(db)"
            }
        } catch {
            if exists { try? admin.allowConnections(db, true) }
            throw error
        }
        fault("swap")
        return aside
    }

    /// Drops a database set aside by a swap, off the operation's path (a drop costs tens of milliseconds).
    func dropInBackground(_ name: String) {
        let c = currentConfig()
        dropQueue.async { [self] in
            do {
                let t = monotonicNanoseconds()
                try withAdmin(c) { try $0.drop(name) }
                logs.appendLine("database", "dropped \(name) in \(DatabaseStep.format(millisecondsSince(t))) (in the background)")
            } catch {
                logs.appendLine("database", "could not drop \(name) in the background (the next 'sagedev up' does): \(error)")
            }
        }
    }

    // MARK: recovery

    /// Finishes or rolls back a swap that a crash interrupted, and drops what interrupted operations left behind:
    /// the app database accepts connections again (or gets its old database back if it is missing), and every
    /// incoming, set-aside and half-built database goes. Runs under the operation lock. Returns what it did.
    func recover(_ admin: ClusterAdmin, _ c: Config) throws -> [String] {
        let db = c.postgres.database
        var notes: [String] = []
        let leftovers = [DatabaseNames.incoming(for: db), DatabaseNames.templateBuild(for: db), DatabaseNames.restoreScratch(for: db)]
        let asidePrefix = DatabaseNames.asidePrefix(for: db)
        // One query for everything this looks at: it runs each time postgres comes up, before the apps start.
        let found = try admin.allowingConnections([db] + leftovers, orStartingWith: asidePrefix)
        var asides = found.keys.filter { $0.hasPrefix(asidePrefix) }.sorted()
        switch found[db] {
        case nil:
            if let last = asides.popLast() {
                try admin.rename(last, to: db)
                try admin.allowConnections(db, true)
                notes.append("\(db) was missing after an interrupted swap: put back its previous database (\(last))")
            }
        case false?:
            try admin.allowConnections(db, true)
            notes.append("\(db) refused connections after an interrupted swap: it accepts them again")
        default:
            break
        }
        for leftover in asides + leftovers where found[leftover] != nil {
            try admin.drop(leftover)
            notes.append("dropped \(leftover), left behind by an interrupted operation")
        }
        for n in notes { logs.appendLine("database", "recovery: \(n)") }
        return notes
    }

    /// Recovery as soon as postgres answers after the daemon started or postgres restarted (a crash may have cut
    /// a swap short). Meanwhile postgres's probe checks the server, not the app database, which may refuse
    /// connections until this has run.
    public func recoverInBackground() {
        activity.begin()
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            defer { activity.end() }
            do {
                let lock = try self.lock(nil)
                defer { lock.release() }
                let c = currentConfig()
                // The session of the check that found postgres ready, when it is still kept (then closed: it is
                // on the app database); else a maintenance session.
                if let app = activity.startupSession.take(endpoint(c).options()) {
                    defer { app.close() }
                    _ = try recover(ClusterAdmin(app), c)
                } else {
                    _ = try withAdmin(c) { try recover($0, c) }
                }
            } catch {
                logs.appendLine("database", "recovery: could not check for interrupted operations: \(error)")
                return
            }
            refillInBackground()
        }
    }

    // MARK: ready copies

    /// Tops up the ready copies of the template in the background, when the template is current.
    /// With no copies wanted (SAGEDEV_RESET_SPARES=0), the refill only drops the ones left from an earlier setting.
    public func refillInBackground() {
        copies.refillInBackground { [self] in
            let c = currentConfig()
            do {
                let key = try templateKey(c)
                let lines = try withAdmin(c) { admin -> [String] in
                    guard try TemplateManager(database: c.postgres.database).status(admin, key: key) == .current else { return [] }
                    return try copies.refill(admin, db: c.postgres.database, key: key)
                }
                for line in lines { logs.appendLine("database", "ready copies: \(line)") }
            } catch {
                copies.problem.withValue { $0 = "the last copy failed: \(error)" }
                logs.appendLine("database", "ready copies: could not make one (resets copy the template themselves meanwhile): \(error)")
            }
        }
    }

    /// For `status`: ready copies of the current template against the target, why the pool is short, and the
    /// number of clones. From one query on the maintenance database.
    /// Ready copies and clones change only when an operation of this daemon ends (or a person makes databases by
    /// hand): the answer is kept until then, or for 30 s, instead of a new connection every 2 s while idle.
    public func statusFields(deadline: Deadline = .after(seconds: 1)) -> (readyCopies: ReadyCopiesStatus, clones: Int)? {
        let epoch = activity.completed &+ copies.refills.current &+ cloneChanges.current
        let now = monotonicNanoseconds()
        if let k = fieldsCache.current, k.epoch == epoch, now &- k.at < 30_000_000_000, !activity.isBusy {
            return (ReadyCopiesStatus(ready: k.ready, target: copies.target(), problem: copies.problem.current), k.clones)
        }
        guard let fresh = readStatusFields(deadline: deadline) else { return nil }
        fieldsCache.withValue { $0 = (now, epoch, fresh.readyCopies.ready, fresh.clones) }
        return fresh
    }

    private func readStatusFields(deadline: Deadline) -> (readyCopies: ReadyCopiesStatus, clones: Int)? {
        let c = currentConfig()
        let db = c.postgres.database
        return try? withAdmin(c, deadline: deadline) { admin in
            let templateKey = (try? admin.label(DatabaseNames.template(for: db)))??.fields["key"]
            let spares = (try? admin.databases(prefix: DatabaseNames.sparePrefix(for: db), sizes: false)) ?? []
            let ready = templateKey == nil ? 0 : spares.filter { $0.label?.kind == "spare" && $0.label?.fields["key"] == templateKey }.count
            let clones = (try? admin.databases(prefix: DatabaseNames.clonePrefix(for: db), sizes: false).count) ?? 0
            return (ReadyCopiesStatus(ready: ready, target: copies.target(), problem: copies.problem.current), clones)
        }
    }

    // MARK: before the apps start

    /// The step the engine runs after postgres and valkey are healthy and before the apps start: recover from an
    /// interrupted operation, apply pending migrations (files, then the command), seed a database that was never
    /// seeded, and make the template when it is missing or stale and the database was just built from scratch.
    /// Returns lines for the `up` output.
    public func beforeApps(_ c: Config) throws -> [String] {
        let r = StepRecorder("up", sink: { _ in }, logs: logs)
        let lock = try self.lock(r)
        defer { lock.release() }
        // One session does the whole step when it can: the app database's own. A second, to the maintenance
        // database, is a cold backend of its own (about 4 ms before its first answer, on the path of every `up`).
        // The maintenance session is needed when the app database is missing or refuses connections (after an
        // interrupted swap), and to make the template (a copy of the app database, which must have no sessions).
        // The session of the check that found postgres ready, when it was kept, is warm already.
        let handed = activity.startupSession.take(endpoint(c).options())
        if handed != nil { logs.appendLine("database", "up: runs on the session of the check that found postgres ready") }
        if let app = handed ?? (try? endpoint(c).connect()) {
            defer { app.close() }
            return try beforeApps(c, r, admin: ClusterAdmin(app), app: app)
        }
        return try withAdmin(c) { admin in try beforeApps(c, r, admin: admin, app: nil) }
    }

    /// `app`: a session on the app database, which `admin` then wraps (its cluster-wide work runs there too).
    private func beforeApps(_ c: Config, _ r: StepRecorder, admin: ClusterAdmin, app: PostgresConnection?) throws -> [String] {
        var lines = try recover(admin, c)
        if app == nil, try ensureAppDatabase(admin, c) { lines.append("created database \(c.postgres.database)") }
        let m = try migrator(c), s = try seeder(c)
        let conn = try app ?? endpoint(c).connect()
        let mr: Migrator.Report, sr: Seeder.Report?
        do {
            defer { if app == nil { conn.close() } }
            do { mr = try m.migrate(conn) } catch { r.note("migrate failed: \(error)"); throw error }
            lines.append("migrate: " + mr.summary)
            do { sr = try s.seedIfUnseeded(conn) } catch { r.note("seed failed: \(error)"); throw error }
            if let sr { lines.append("seed: " + sr.summary) }
        }
        let key = TemplateKey.compute(migrations: m.files, seeds: s.files, migrateCommand: c.migrateCommand, seedCommand: c.seedCommand)
        let template = TemplateManager(database: c.postgres.database)
        let status = try template.status(admin, key: key)
        // Only a database that this run migrated and seeded from nothing is a faithful template; a database with a
        // developer's own rows in it is not, so a stale template then waits for the next reset-db to rebuild it.
        let pristine = sr != nil || (s.isEmpty && mr.alreadyApplied == 0 && (!mr.applied.isEmpty || mr.commandRan))
        if status == .current {
            lines.append("template: \(template.templateName) is current")
        } else if pristine {
            let t = monotonicNanoseconds()
            let method = try copies.templateAccess.sync(flags: .barrier) { () throws -> String in
                guard let app else { return try template.refresh(admin, key: key, from: c.postgres.database) }
                app.close()  // the copy needs the app database without sessions
                return try withAdmin(c) { try template.refresh($0, key: key, from: c.postgres.database) }
            }
            lines.append("template: \(status == .missing ? "created" : "refreshed") \(template.templateName) in \(DatabaseStep.format(millisecondsSince(t))) (file_copy_method=\(method))")
        } else {
            lines.append("template: \(template.templateName) is \(status.description); the next 'sagedev reset-db' rebuilds it")
        }
        for l in lines { r.note(l) }
        refillInBackground()
        return lines
    }
}

func formatBytes(_ n: Int) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1024 * 1024 { return "\((Double(n) / 1024 * 10).rounded() / 10) KiB" }
    return "\((Double(n) / 1048576 * 10).rounded() / 10) MiB"
}
