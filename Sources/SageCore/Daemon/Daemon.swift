import Foundation
import Dispatch
import SageSystem

/// Extra per-service facts for `status` that need a connection (Postgres connections in use, Valkey memory).
public typealias StatusExtras = @Sendable (ServiceID, Config) -> ServiceExtras

/// The per-project daemon: holds the lock, the control socket and the engine, and answers commands.
public final class Daemon: @unchecked Sendable {
    public let paths: ProjectPaths
    public let engine: Engine
    private let lock: FileLock
    private let serverQueue = DispatchQueue(label: "sagedev.control")
    private var server: ControlServer?
    private let done = DispatchSemaphore(value: 0)
    private let extras: StatusExtras?
    private var signalWatch: SignalWatch?
    /// The control commands: name → handler (see `handle(_:_:)`).
    private var commands: [String: @Sendable (ControlRequestLine, ControlConnection) -> Void] = [:]
    public var onShutdown: (@Sendable () -> Void)?
    /// Postgres connections and Valkey memory, refreshed every 2 s in the background so that `status` answers
    /// without opening a database connection of its own.
    private struct ExtrasBox: Sendable { var values: [ServiceID: ServiceExtras] = [:]; var at: Double = 0 }
    private let extrasCache = Locked(ExtrasBox())
    private var extrasTimer: DispatchSourceTimer?

    private func refreshExtras() {
        guard let extras else { return }
        let c = engine.config
        var values: [ServiceID: ServiceExtras] = [:]
        for snap in engine.snapshot() where snap.supervisor.state == .healthy {
            let v = extras(snap.service, c)
            if !v.isEmpty { values[snap.service] = v }
        }
        extrasCache.withValue { $0 = ExtrasBox(values: values, at: wallClockSeconds()) }
    }

    /// Why this runtime was chosen (for `status`).
    public var runtimeReason = ""
    /// Hot reload, unless the daemon was started with --no-watch.
    public var reloader: HotReloader?
    /// Work that need not hold up the first request (the registry entry): run in the background once the socket
    /// listens.
    public var onListening: [@Sendable () -> Void] = []
    /// Where to say the socket listens (`ReadinessNotification`), when `up` started this daemon.
    public var readinessFD: Int32?

    public struct AlreadyRunning: Error, CustomStringConvertible {
        public var pid: Int32?
        public var description: String {
            "a sagedev daemon already runs for this project\(pid.map { " (pid \($0))" } ?? ""); use 'sagedev status' or 'sagedev down'"
        }
    }

    /// Takes the project's daemon lock (only one daemon per project) and opens the control socket.
    /// A client that leaves a request line unfinished this long is disconnected.
    private let stallSeconds: Double

    public init(paths: ProjectPaths, engine: Engine, extras: StatusExtras? = nil, stallSeconds: Double = 10) throws {
        self.stallSeconds = stallSeconds
        try paths.ensure()
        var acquired = try FileLock.tryAcquire(path: paths.daemonLock)
        if acquired == nil {
            // A daemon that was just killed holds its lock until its last thread has exited, a few milliseconds
            // after its main thread shows as a zombie: wait for that one. A live daemon keeps the lock: fail at once.
            let holder = FileLock.holderPid(path: paths.daemonLock)
            if let h = holder, ProcFS.isAlive(pid: h, startTime: nil) { throw AlreadyRunning(pid: h) }
            acquired = try? FileLock.acquire(path: paths.daemonLock, deadline: .after(seconds: 3))
        }
        guard let lock = acquired else { throw AlreadyRunning(pid: FileLock.holderPid(path: paths.daemonLock)) }
        try? lock.writeOwner(pid: ProcessIdentity.pid)
        self.lock = lock
        self.paths = paths; self.engine = engine; self.extras = extras
        registerStackCommands()
    }


    /// Serves until `down` or SIGTERM/SIGINT. Returns the exit code.
    public func run() throws -> Int32 {
        engine.adoptRunning()
        let server = try ControlServer(path: paths.socket, queue: serverQueue, stallSeconds: stallSeconds) { [weak self] line, conn in
            self?.dispatch(line, conn)
        }
        self.server = server
        server.start()
        // `up` waits on this rather than polling for the socket.
        if let fd = readinessFD { ReadinessNotification.signal(fd) }
        for work in onListening { DispatchQueue.global(qos: .userInitiated).async(execute: work) }
        signalWatch = Signals.handle([Signals.terminate, Signals.interrupt, Signals.hangup], queue: serverQueue) { [weak self] sig in
            guard let self else { return }
            self.engine.logs.appendLine("daemon", "received \(signalName(sig)); stopping the stack")
            DispatchQueue.global().async { self.shutdown(stopServices: true) }
        }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        // The first refresh follows the reply to `up` instead (see `awaitHealthy`), which this would slow.
        timer.schedule(deadline: .now() + 2.0, repeating: 2.0, leeway: .milliseconds(200))
        timer.setEventHandler { [weak self] in self?.refreshExtras() }
        timer.resume()
        extrasTimer = timer
        watchBuildReports()
        engine.logs.appendLine("daemon", "sagedev daemon \(ProcessIdentity.pid) serving \(paths.socket) (runtime \(engine.runtime.kind))")
        done.wait()
        return 0
    }

    /// Follows the apps' logs for their compilers' reports (tsc under a Nest-style dev command), so that `status`
    /// shows a failed build with the compiler's message.
    private func watchBuildReports() {
        struct Follower: @unchecked Sendable { var app: AppSpec; var log: BuildLog? }
        let followers = Locked<[String: Follower]>([:])
        let engine = self.engine
        _ = engine.logs.subscribe { line in
            let s = ServiceID(line.service)
            guard let app = engine.config.app(s) else { return }
            let event: BuildLog.Event? = followers.withValue { f in
                if f[line.service]?.app != app {
                    let rule = DevServerAdapter.detect(app, projectDirectory: engine.config.projectDirectory).rule
                    f[line.service] = Follower(app: app, log: rule?.build.map { BuildLog(report: $0) })
                }
                return f[line.service]?.log?.received(line.text)
            }
            switch event {
            case .failed(let first, let n)?: engine.buildReported(s, error: first, errors: n)
            case .succeeded?: engine.buildReported(s, error: nil)
            case nil: break
            }
        }
    }

    private let shutdownOnce = Locked(false)

    /// Stops the services (unless the daemon only is asked to go), closes the socket and releases the lock.
    public func shutdown(stopServices: Bool) {
        guard shutdownOnce.withValue({ let was = $0; $0 = true; return !was }) else { return }
        reloader?.stop()
        extrasTimer?.cancel()
        if stopServices { engine.stop(engine.config.services.serviceIDs) }
        onShutdown?()
        serverQueue.sync { server?.close() }
        lock.release()
        done.signal()
    }

    // MARK: commands

    /// Registers the handler of one request type. It runs on the control queue: work that takes time moves elsewhere.
    /// A request whose arguments do not decode is answered with a bad-request error and never reaches it.
    public func handle<R: ControlRequest>(_ type: R.Type, _ handler: @escaping @Sendable (R, ControlReply<R.Response>) -> Void) {
        commands[R.command] = { line, connection in
            let reply = ControlReply<R.Response>(id: line.id, connection: connection)
            let request: R
            do { request = try line.arguments(R.self) } catch { reply.fail("bad-request", "\(error)"); return }
            handler(request, reply)
        }
    }

    private func dispatch(_ line: ControlRequestLine, _ conn: ControlConnection) {
        guard let h = commands[line.command] else {
            conn.send(ReplyEnvelope.failure(id: line.id, "unknown-command",
                "unknown command \"\(line.command.prefix(64))\"; this daemon knows: \(commands.keys.sorted().joined(separator: ", "))"))
            return
        }
        h(line, conn)
    }

    struct BadServices: Error, CustomStringConvertible { var description: String }

    /// The services a request names (all when none), in start order.
    func services(_ ids: [ServiceID]) throws -> [ServiceID] {
        let known = engine.config.services.serviceIDs
        guard !ids.isEmpty else { return known }
        for id in ids where !known.contains(id) {
            throw BadServices(description: "unknown service \"\(id.rawValue.prefix(64))\"; the services are \(known.map(\.rawValue).joined(separator: ", "))")
        }
        return known.filter { ids.contains($0) }
    }

    private func registerStackCommands() {
        handle(PingRequest.self) { [unowned self] _, reply in
            reply.succeed(PingResponse(pid: Int(ProcessIdentity.pid), project: engine.config.projectName, runtime: engine.runtime.kind,
                                       sagedev: sagedevVersion, protocol: ControlProtocol.version))
        }
        handle(StatusRequest.self) { [unowned self] _, reply in
            DispatchQueue.global().async { reply.succeed(self.statusReport()) }
        }
        handle(UpRequest.self) { [unowned self] request, reply in
            let services: [ServiceID]
            do { services = try self.services(request.services) } catch { reply.fail("bad-request", "\(error)"); return }
            DispatchQueue.global().async { self.bringUp(services, reply) }
        }
        handle(RestartRequest.self) { [unowned self] request, reply in
            let services: [ServiceID]
            do { services = try self.services(request.services) } catch { reply.fail("bad-request", "\(error)"); return }
            DispatchQueue.global().async {
                if let conflict = self.engine.restart(services) { reply.fail("port-conflict", conflict); return }
                self.awaitHealthy(services, reply)
            }
        }
        handle(StopRequest.self) { [unowned self] request, reply in
            let services: [ServiceID]
            do { services = try self.services(request.services) } catch { reply.fail("bad-request", "\(error)"); return }
            DispatchQueue.global().async {
                self.engine.stop(services)
                reply.succeed(StopResponse(stopped: services))
            }
        }
        handle(DownRequest.self) { [unowned self] request, reply in
            DispatchQueue.global().async {
                let all = self.engine.config.services.serviceIDs
                self.engine.stop(all)
                var result = DownResponse(stopped: all, volumesRemoved: false, runtime: self.engine.runtime.kind)
                if request.volumes {
                    do { try self.engine.runtime.removeData(config: self.engine.config); result.volumesRemoved = true }
                    catch { result.error = "\(error)" }
                }
                // The socket closes only once the reply has been written.
                reply.succeed(result) { DispatchQueue.global().async { self.shutdown(stopServices: false) } }
            }
        }
        handle(LogsRequest.self) { [unowned self] request, reply in
            let services: [ServiceID]
            do { services = try self.services(request.services) } catch { reply.fail("bad-request", "\(error)"); return }
            self.streamLogs(services, tail: max(0, request.tail), follow: request.follow, reply)
        }
        handle(WatchRequest.self) { [unowned self] _, reply in
            let token = self.engine.observe { notice in reply.event(ControlEvent(notice)) }
            reply.whenClosed { [weak self] in self?.engine.stopObserving(token) }
        }
        handle(ShutdownRequest.self) { [unowned self] _, reply in
            reply.succeed(EmptyResponse()) { DispatchQueue.global().async { self.shutdown(stopServices: false) } }
        }
    }

    private func bringUp(_ services: [ServiceID], _ reply: ControlReply<StatusReport>) {
        // Starting a service means starting what it depends on.
        let graph = engine.config.services
        var all = Set(services)
        for s in services { all.formUnion(graph.dependencies(of: s)) }
        let wanted = graph.serviceIDs.filter { all.contains($0) }
        if let conflict = engine.up(wanted) {
            reply.fail("port-conflict", conflict)
            return
        }
        awaitHealthy(wanted, reply)
    }

    /// Streams progress to the client until every service is healthy or one gave up.
    private func awaitHealthy(_ services: [ServiceID], _ reply: ControlReply<StatusReport>) {
        let finished = Locked(false)
        let token = Locked<Int?>(nil)
        // Runs after every engine notice (and once at the start): the engine notifies on every state change, so
        // nothing needs polling.
        let check: @Sendable () -> Void = { [weak self] in
            guard let self else { return }
            let outcome = self.engine.upOutcome(services)
            guard outcome.done, finished.withValue({ let was = $0; $0 = true; return !was }) else { return }
            if let t = token.current { self.engine.stopObserving(t) }
            if let (svc, why) = outcome.failure {
                let name = svc?.rawValue ?? "database"
                reply.fail(ControlError(code: "unhealthy", message: why, service: ServiceID(name),
                                        logTail: CrashExcerpt.lines(self.engine.logs.tailIncludingFile(name, 80))))
            } else {
                // The extras need sessions of their own (a cold postgres backend is about 8 ms): `up` prints none
                // of them, so they are measured after the reply, for the `status` that follows.
                reply.succeed(self.statusReport(measuringExtras: false))
                DispatchQueue.global(qos: .utility).async { self.refreshExtras() }
            }
        }
        let observer = engine.observe { notice in
            reply.event(ControlEvent(notice))
            // Observers run on the engine's queue; the check reads the engine, so it runs elsewhere.
            DispatchQueue.global().async(execute: check)
        }
        token.withValue { $0 = observer }
        reply.whenClosed { [weak self] in self?.engine.stopObserving(observer) }
        check()
    }

    private func streamLogs(_ services: [ServiceID], tail: Int, follow: Bool, _ reply: ControlReply<EmptyResponse>) {
        let names = Set(services.map(\.rawValue))
        var lines: [LogStore.Line] = []
        for s in services { lines += engine.logs.tail(s.rawValue, tail) }
        lines.sort { $0.time < $1.time }
        for l in lines { reply.event(.log(LogEvent(service: l.service, time: l.time, line: l.text))) }
        guard follow else { reply.succeed(EmptyResponse()); return }
        let token = engine.logs.subscribe { l in
            guard names.contains(l.service) else { return }
            reply.event(.log(LogEvent(service: l.service, time: l.time, line: l.text)))
        }
        let logs = engine.logs
        reply.whenClosed { logs.unsubscribe(token) }
    }

    // MARK: status

    /// `measuringExtras`: whether the extras (connections, memory, ready copies) of a service that just became
    /// healthy are measured now when the background refresh has none recent; without, they are left out.
    public func statusReport(measuringExtras: Bool = true) -> StatusReport {
        let c = engine.config
        let now = wallClockSeconds()
        var list: [ServiceStatus] = []
        var allHealthy = true
        let reloads = engine.reloadRecords()
        let builds = engine.buildErrorRecords()
        let cached = extrasCache.current
        for snap in engine.snapshot() {
            let s = snap.service, sup = snap.supervisor
            if snap.wanted && sup.state != .healthy { allHealthy = false }
            if !snap.wanted { allHealthy = false }
            let url: String?
            switch c.services[s]?.kind {
            case .postgres: url = c.postgresURL(redacted: true)
            case .valkey: url = c.valkeyURL(redacted: true)
            default: url = c.port(of: s).map { "http://\(c.urlHost):\($0)" }
            }
            var o = ServiceStatus(name: s, state: sup.state, reason: sup.reason, since: sup.since,
                                  restarts: sup.restarts, wanted: snap.wanted, url: url)
            if case .http(let path)? = c.services[s]?.probe, let base = url { o.healthURL = base + path }
            if let p = sup.lastProbe {
                let outcome: HealthStatus.Outcome
                switch p { case .ready: outcome = .ready; case .notReady: outcome = .notReady; case .fatal: outcome = .fatal }
                o.health = HealthStatus(outcome: outcome, reason: p.reason, latencyMs: ((sup.lastProbeLatency ?? 0) * 100).rounded() / 100)
            }
            if let r = snap.running {
                o.pid = r.pid.map(Int.init)
                o.containerId = r.containerID
                o.container = r.containerName
                o.uptimeSeconds = ((now - r.startedAt) * 10).rounded() / 10
            }
            if let e = sup.lastExit {
                switch e {
                case .exited(let code): o.lastExit = LastExit(code: Int(code))
                case .signalled(let sig): o.lastExit = LastExit(signal: Int(sig), signalName: signalName(sig))
                }
            }
            if !snap.dependencyOutage.isEmpty { o.dependencyOutage = snap.dependencyOutage }
            if let r = reloads[s] {
                o.reload = ReloadStatus(file: r.file, at: r.at, action: r.action, outcome: r.outcome, count: r.count, healthyMs: r.healthyMilliseconds)
            }
            if sup.state == .crashed || sup.state == .failed {
                o.logTail = CrashExcerpt.lines(engine.logs.tailIncludingFile(s.rawValue, 80))
            }
            o.details = engine.runtime.details(s, config: c)
            if let app = c.app(s) {
                let d = DevServerAdapter.detect(app, projectDirectory: c.projectDirectory)
                o.framework = FrameworkStatus(d)
                if let b = builds[s] { o.build = BuildStatus(error: b.message, errors: b.errors, at: b.at, note: d.rule?.build?.onError ?? "") }
            }
            if sup.state == .healthy, let extras {
                // From the background refresh when recent; computed here when the service just became healthy.
                let recent = now - cached.at < 5 ? cached.values[s] : nil
                let values = recent ?? (measuringExtras ? extras(s, c) : ServiceExtras())
                o.connections = values.connections
                o.memory = values.memory
                o.readyCopies = values.readyCopies
                o.clones = values.clones
            }
            list.append(o)
        }
        var watch = WatchStatus(enabled: reloader != nil)
        if let r = reloader {
            watch.directories = r.watchCount
            watch.problem = r.limitMessage
        }
        var report = StatusReport(project: c.projectName, directory: paths.root, runtime: engine.runtime.kind, runtimeReason: runtimeReason,
                                  watch: watch, daemon: DaemonStatus(pid: Int(ProcessIdentity.pid), uptimeSeconds: ((now - engine.startedAt) * 10).rounded() / 10),
                                  healthy: allHealthy, services: list)
        if engine.runtime.kind == "native" {
            // Which lookup step gave the server binaries (SAGEDEV_*_BIN_DIR, project, user toolchain or PATH).
            let toolchain = Toolchain(projectDirectory: paths.root, environment: ProcessEnvironment.current())
            report.toolchain = toolchain.servers(c).compactMap { s in
                s.hit.map { ToolchainStatus(name: s.name, path: $0.path, source: $0.source.rawValue, from: $0.sourceDescription) }
            }
        }
        report.slot = c.placement.slot
        return report
    }
}

/// One reply channel: the events and the one final reply of a request, tagged with its id.
public struct ControlReply<Response: Encodable & Sendable>: Sendable {
    let id: Int?
    let connection: ControlConnection

    public func event(_ e: ControlEvent) { connection.send(EventEnvelope(id: id, event: e)) }
    public func succeed(_ result: Response) { connection.send(ReplyEnvelope(id: id, result: result, error: nil)) }
    /// Replies, then runs `written` once the reply has reached the socket (or the client has gone).
    public func succeed(_ result: Response, whenWritten written: @escaping @Sendable () -> Void) {
        connection.send(ReplyEnvelope(id: id, result: result, error: nil), whenWritten: written)
    }
    public func fail(_ error: ControlError) { connection.send(ReplyEnvelope<Response>(id: id, result: nil, error: error)) }
    public func fail(_ code: String, _ message: String) { fail(ControlError(code: code, message: message)) }
    /// Runs `f` when the client goes away (stop streaming to it).
    public func whenClosed(_ f: @escaping @Sendable () -> Void) { connection.whenClosed(f) }
}

extension ControlEvent {
    init(_ notice: EngineNotice) {
        switch notice {
        case .changed(let s, let st, let reason, let ms):
            self = .progress(ProgressEvent(service: s, state: st, reason: reason, elapsedMs: ms))
        case .step(let name, let message):
            self = .step(StepEvent(step: name, message: message))
        }
    }
}
