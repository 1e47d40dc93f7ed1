import SageSystem
import SageWire

/// Puts the pieces together for a project: which runtime, which probes, which status extras.
public enum Stack {
    /// The host to dial for a probe, without URL brackets.
    static func dialHost(_ c: Config) -> String {
        var h = c.urlHost
        if h.hasPrefix("[") { h = String(h.dropFirst().dropLast()) }
        return h
    }

    /// The probe for each service, from its spec: Postgres auth + SELECT 1, Valkey AUTH + PING, HTTP GET of the
    /// health path, a TCP connect.
    public static func probe(_ s: ServiceID, _ c: Config, runtime: (any ServiceRuntime)? = nil) -> any Probe {
        let host = dialHost(c)
        let spec = c.services[s]
        let port = spec?.port ?? 0
        switch spec?.probe ?? .tcp {
        case .postgres:
            return PostgresProbe(host: host, port: c.postgres.port, user: c.postgres.user, password: c.postgres.password,
                                 database: c.postgres.database)
        case .resp:
            return ValkeyProbe(host: host, port: c.valkey.port, password: c.valkey.password.isEmpty ? nil : c.valkey.password)
        case .http(let path):
            return HTTPProbe(host: host, port: port, path: path)
        case .processAlive(let seconds):
            return ProcessAliveProbe(service: s, seconds: seconds) { [weak runtime] in runtime?.runningSeconds(s) }
        case .tcp, .completed:
            return TCPProbe(host: host, port: port)
        }
    }

    /// Which runtime runs the stack, and why (shown by `status` and `doctor`): `native` or `compose` as set, and
    /// for `auto`, compose when a Docker engine answers `docker info` within 2 s, else native.
    public static func chooseRuntime(_ c: Config, environment: [String: String]) -> (runtime: Config.Runtime, reason: String) {
        switch c.runtime {
        case .native: return (.native, "SAGEDEV_RUNTIME=native")
        case .compose: return (.compose, "SAGEDEV_RUNTIME=compose")
        case .auto:
            let host = DockerEngineProbe.describeHost(environment)
            return DockerEngineProbe.answers(environment: environment, within: 2)
                ? (.compose, "SAGEDEV_RUNTIME=auto and a Docker engine answered at \(host) within 2 s")
                : (.native, "SAGEDEV_RUNTIME=auto and no Docker engine answered at \(host) within 2 s")
        }
    }

    public static func makeRuntime(config c: Config, paths: ProjectPaths, environment: [String: String], logs: LogStore,
                                   choice: Config.Runtime? = nil) throws -> any ServiceRuntime {
        switch choice ?? chooseRuntime(c, environment: environment).runtime {
        case .compose: return ComposeRuntime(logs: logs, environment: environment)
        default: return NativeRuntime(paths: paths, logs: logs, environment: environment)
        }
    }

    public static func makeDaemon(config c: Config, paths: ProjectPaths, environment: [String: String], watch: Bool = true) throws -> Daemon {
        let logs = LogStore(directory: paths.logs)
        let choice = chooseRuntime(c, environment: environment)
        logs.appendLine("daemon", "runtime \(choice.runtime.rawValue): \(choice.reason)")
        let runtime = try makeRuntime(config: c, paths: paths, environment: environment, logs: logs, choice: choice.runtime)
        try runtime.prepare(c)
        let activity = DatabaseActivity()
        let engine = Engine(config: c, runtime: runtime, logs: logs, probes: { s, c in activity.probe(s, c, normal: probe(s, c, runtime: runtime)) })
        let stall = environment["SAGEDEV_CONTROL_STALL_SECONDS"].flatMap(Double.init) ?? 10
        let databaseStatus = Locked<DatabaseManager?>(nil)
        let daemon = try Daemon(paths: paths, engine: engine, extras: { s, c in
            var extras = statusExtras(s, c)
            if s == .postgres, let d = databaseStatus.current, let f = d.statusFields() { extras.readyCopies = f.readyCopies; extras.clones = f.clones }
            return extras
        }, stallSeconds: stall)
        daemon.runtimeReason = choice.reason
        // Holding the project's lock now, this process is the instance's daemon: the registry says so once the
        // socket listens.
        let instances = InstanceStore.forUser(environment: environment)
        daemon.onListening.append {
            do { try InstanceClaims.markDaemon(directory: paths.root, runtime: choice.runtime.rawValue, store: instances) } catch {
                logs.appendLine("daemon", "recording this daemon in \(instances.file) failed: \(error)")
            }
        }
        if let compose = runtime as? ComposeRuntime {
            daemon.onShutdown = { [weak engine] in
                // A stack the daemon stopped (`down`, SIGTERM) also loses its containers and network, as with
                // `docker compose down`; the named volumes stay. The `logs -f` and `events` children end with it.
                if let engine, engine.snapshot().allSatisfy({ !$0.wanted }) {
                    do { try compose.down(config: engine.config, volumes: false) } catch {
                        logs.appendLine("daemon", "removing the stopped containers failed: \(error)")
                    }
                }
                compose.close()
            }
        }
        let me = ProcessRef.current()
        let stopping = daemon.onShutdown
        daemon.onShutdown = {
            stopping?()
            InstanceClaims.release(directory: paths.root, daemon: me, store: instances)
        }
        // Migrations, seeds and the template before the apps start; reset-db, seed, migrate, snapshots, clones,
        // backups. The clients of postgres come from the service graph.
        let clients = EnginePostgresClients(engine: engine, clients: { c in c.services.postgresClients })
        let dataDirectory = paths.data
        let native = runtime.kind == "native"
        let freeBytes: @Sendable () -> Int? = {
            guard native, let free = FileDescriptor.availableBytes(onFileSystemOf: dataDirectory) else { return nil }
            return free >= Double(Int.max) ? Int.max : Int(free)
        }
        let database = DatabaseManager(paths: paths, logs: logs, environment: environment, config: { engine.config },
                                       clients: clients,
                                       runJob: { command, c, deadline in try runtime.runJob(command, service: .backend, config: c, deadline: deadline) },
                                       postgresClient: { tool, c in try runtime.postgresClient(tool, config: c) },
                                       activity: activity,
                                       freeBytes: freeBytes,
                                       postgresPid: { clients.postgresPid })
        engine.setJobRunner { job, c, _ in
            switch job.work {
            case .database: return try database.beforeApps(c)
            case .command(let command, _):
                throw RuntimeError(nil, "a job that runs `\(command)` is not supported yet; remove it from .env")
            }
        }
        database.register(on: daemon)
        databaseStatus.withValue { $0 = database }
        // Each time postgres answers after it was down (or a new daemon found it), an interrupted swap is finished or
        // rolled back before the app database is probed again.
        let recoveryPending = Locked(true)
        // The salted password for SCRAM, derived while postgres starts from the salt it gave last time.
        let scram = SCRAMSaltHint(path: paths.run + "/postgres.scram")
        scram.prime(password: c.postgres.password)
        database.activity.begin()
        _ = engine.observe { notice in
            guard case .changed(let s, let state, _, _) = notice, s == .postgres else { return }
            let healthy = state == .healthy
            let start = recoveryPending.withValue { pending -> Bool? in
                if healthy && pending { pending = false; return true }
                if !healthy && !pending && state != .reloading { pending = true; return false }
                return nil
            }
            switch start {
            case true?:
                database.activity.startupSession.disarm()
                scram.rememberInBackground(password: engine.config.postgres.password)
                // The database step that postgres's health just started recovers first thing; a second recovery
                // beside it would only hold its lock (and the apps' start) for a few ms.
                if engine.machineSnapshot.jobs[.database]?.state != .running { database.recoverInBackground() }
                database.activity.end()
            case false?:
                database.activity.begin()
                // A session kept for the next operation would hold up a smart shutdown, and is gone after a restart.
                database.closeIdleSessions()
                database.activity.startupSession.arm()
            case nil: break
            }
        }
        if watch {
            let reloader = HotReloader(engine: engine, environment: environment)
            reloader.start()
            daemon.reloader = reloader
        }
        return daemon
    }

    /// Postgres connections in use (with the 80% warning from the runbook) and Valkey memory, for `status`.
    /// The query goes to the maintenance database, never the app's: a connection there would get in the way of
    /// creating the reset template from it, and it must not count itself.
    public static func statusExtras(_ s: ServiceID, _ c: Config) -> ServiceExtras {
        switch c.services[s]?.kind {
        case .postgres:
            guard let conn = try? PostgresConnection.connect(
                PostgresConnectOptions(host: dialHost(c), port: c.postgres.port, user: c.postgres.user,
                                       password: c.postgres.password, database: "postgres"),
                deadline: .after(seconds: 1)) else { return ServiceExtras() }
            defer { conn.close() }
            guard let r = try? conn.simpleQuery("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid(); SHOW max_connections", deadline: .after(seconds: 1)),
                  r.count == 2, let used = Int(r[0].rows.first?.first.flatMap { $0 } ?? ""),
                  let max = Int(r[1].rows.first?.first.flatMap { $0 } ?? "") else { return ServiceExtras() }
            return ServiceExtras(connections: ConnectionsStatus(used: used, max: max))
        case .valkey:
            guard let conn = try? ValkeyConnection.connect(host: dialHost(c), port: c.valkey.port, user: nil,
                                                          password: c.valkey.password.isEmpty ? nil : c.valkey.password,
                                                          deadline: .after(seconds: 1)),
                  let reply = try? conn.command(["INFO", "memory"], deadline: .after(seconds: 1)) else { return ServiceExtras() }
            defer { conn.close() }
            var info: [String: String] = [:]
            guard let text = reply.string else { return ServiceExtras() }
            for line in text.split(whereSeparator: \.isNewline) {  // "\r\n" is one Character
                let kv = line.split(separator: ":", maxSplits: 1)
                if kv.count == 2 { info[String(kv[0])] = String(kv[1]) }
            }
            guard let used = info["used_memory"].flatMap({ Int($0) }) else { return ServiceExtras() }
            return ServiceExtras(memory: MemoryStatus(usedBytes: used, usedHuman: info["used_memory_human"] ?? "\(used)B"))
        default:
            return ServiceExtras()
        }
    }
}
