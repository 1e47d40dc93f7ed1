import Foundation
import Glibc
import Dispatch
import SageSystem

/// Extra per-service facts for `status` that need a connection (Postgres connections in use, Valkey memory).
public typealias StatusExtras = @Sendable (ServiceID, Config) -> [String: Any]

/// The per-project daemon: holds the lock, the control socket and the engine, and answers commands.
public final class Daemon: @unchecked Sendable {
    public let paths: ProjectPaths
    public let engine: Engine
    private let lock: FileLock
    private let serverQueue = DispatchQueue(label: "sagedev.control")
    private var server: ControlServer?
    private let done = DispatchSemaphore(value: 0)
    private let extras: StatusExtras?
    private var signalSources: [DispatchSourceSignal] = []
    /// Commands added by later layers (database, watcher): name → handler.
    private var extraCommands: [String: @Sendable ([String: Any], ControlConnection) -> Void] = [:]
    public var onShutdown: (@Sendable () -> Void)?
    /// Postgres connections and Valkey memory, refreshed every 2 s in the background so that `status` answers
    /// without opening a database connection of its own.
    private struct ExtrasBox: @unchecked Sendable { var values: [ServiceID: [String: Any]] = [:]; var at: Double = 0 }
    private let extrasCache = Locked(ExtrasBox())
    private var extrasTimer: DispatchSourceTimer?

    private func refreshExtras() {
        guard let extras else { return }
        let c = engine.config
        var values: [ServiceID: [String: Any]] = [:]
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
        try? lock.writeOwner(pid: getpid())
        self.lock = lock
        self.paths = paths; self.engine = engine; self.extras = extras
    }

    public func register(_ command: String, _ handler: @escaping @Sendable ([String: Any], ControlConnection) -> Void) {
        extraCommands[command] = handler
    }

    /// Serves until `down` or SIGTERM/SIGINT. Returns the exit code.
    public func run() throws -> Int32 {
        engine.adoptRunning()
        let server = try ControlServer(path: paths.socket, queue: serverQueue, stallSeconds: stallSeconds) { [weak self] req, conn in
            self?.handle(req, conn)
        }
        self.server = server
        server.start()
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: serverQueue)
            src.setEventHandler { [weak self] in
                guard let self else { return }
                self.engine.logs.appendLine("daemon", "received \(signalName(sig)); stopping the stack")
                DispatchQueue.global().async { self.shutdown(stopServices: true) }
            }
            src.resume()
            signalSources.append(src)
        }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        timer.schedule(deadline: .now() + 0.2, repeating: 2.0, leeway: .milliseconds(200))
        timer.setEventHandler { [weak self] in self?.refreshExtras() }
        timer.resume()
        extrasTimer = timer
        engine.logs.appendLine("daemon", "sagedev daemon \(getpid()) serving \(paths.socket) (runtime \(engine.runtime.kind))")
        done.wait()
        return 0
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

    private func handle(_ req: [String: Any], _ conn: ControlConnection) {
        // Request ids are integers; anything else is answered with a null id.
        let id = req["id"] as? Int
        let cmd = req["cmd"] as? String ?? ""
        let args = req["args"] as? [String: Any] ?? [:]
        @Sendable func reply(_ result: [String: Any]) { conn.send(["id": id ?? NSNull(), "ok": true, "result": result]) }
        @Sendable func fail(_ code: String, _ message: String) { conn.send(ControlProtocol.error(id: id, code: code, message)) }
        let services: [ServiceID]
        do { services = try parseServices(args["services"]) } catch { fail("bad-request", "\(error)"); return }

        switch cmd {
        case "ping":
            reply(["pid": Int(getpid()), "project": engine.config.projectName, "runtime": engine.runtime.kind])
        case "status":
            DispatchQueue.global().async { reply(self.statusJSON()) }
        case "up", "start":
            DispatchQueue.global().async { self.bringUp(services, id: id, conn) }
        case "restart":
            DispatchQueue.global().async {
                if let conflict = self.engine.restart(services) { fail("port-conflict", conflict); return }
                self.awaitHealthy(services, id: id, conn)
            }
        case "stop":
            DispatchQueue.global().async {
                self.engine.stop(services)
                reply(["stopped": services.map(\.rawValue)])
            }
        case "down":
            let volumes = args["volumes"] as? Bool ?? false
            DispatchQueue.global().async {
                let all = self.engine.config.services.serviceIDs
                self.engine.stop(all)
                var result: [String: Any] = ["stopped": all.map(\.rawValue), "volumesRemoved": false,
                                             "runtime": self.engine.runtime.kind]
                if volumes {
                    do { try self.engine.runtime.removeData(config: self.engine.config); result["volumesRemoved"] = true }
                    catch { result["error"] = "\(error)" }
                }
                // The socket closes only once the reply has been written.
                conn.send(["id": id ?? NSNull(), "ok": true, "result": result]) {
                    DispatchQueue.global().async { self.shutdown(stopServices: false) }
                }
            }
        case "logs":
            streamLogs(services, tail: args["tail"] as? Int ?? 100, follow: args["follow"] as? Bool ?? false, id: id, conn)
        case "shutdown":
            conn.send(["id": id ?? NSNull(), "ok": true, "result": [String: Any]()]) {
                DispatchQueue.global().async { self.shutdown(stopServices: false) }
            }
        default:
            if let h = extraCommands[cmd] { h(req, conn); return }
            let known = ["ping", "status", "up", "restart", "stop", "down", "logs", "shutdown"] + extraCommands.keys.sorted()
            fail("unknown-command", "unknown command \"\(cmd.prefix(64))\"; this daemon knows: \(known.joined(separator: ", "))")
        }
    }

    struct BadServices: Error, CustomStringConvertible { var description: String }

    /// The named services in start order (all of them when none is named).
    private func parseServices(_ v: Any?) throws -> [ServiceID] {
        let known = engine.config.services.serviceIDs
        guard let list = v as? [String], !list.isEmpty else { return known }
        for n in list where !known.contains(ServiceID(n)) {
            throw BadServices(description: "unknown service \"\(n)\"; the services are \(known.map(\.rawValue).joined(separator: ", "))")
        }
        return known.filter { list.contains($0.rawValue) }
    }

    private func bringUp(_ services: [ServiceID], id: Int?, _ conn: ControlConnection) {
        // Starting a service means starting what it depends on.
        let graph = engine.config.services
        var all = Set(services)
        for s in services { all.formUnion(graph.dependencies(of: s)) }
        let wanted = graph.serviceIDs.filter { all.contains($0) }
        if let conflict = engine.up(wanted) {
            conn.send(ControlProtocol.error(id: id, code: "port-conflict", conflict))
            return
        }
        awaitHealthy(wanted, id: id, conn)
    }

    /// Streams progress to the client until every service is healthy or one gave up.
    private func awaitHealthy(_ services: [ServiceID], id: Int?, _ conn: ControlConnection) {
        let finished = Locked(false)
        let token = Locked<Int?>(nil)
        // Runs after every engine notice (and once at the start): the engine notifies on every state change, so
        // nothing needs polling.
        let check: @Sendable () -> Void = { [weak self] in
            guard let self else { return }
            let outcome = self.engine.upOutcome(services)
            guard outcome.done, finished.withValue({ let was = $0; $0 = true; return !was }) else { return }
            if let t = token.current { self.engine.stopObserving(t) }
            var result = self.statusJSON()
            if let (svc, why) = outcome.failure {
                result["failed"] = svc?.rawValue ?? "database"
                result["reason"] = why
                result["logTail"] = self.engine.logs.tailIncludingFile(svc?.rawValue ?? "database", 20)
                conn.send(["id": id ?? NSNull(), "ok": false, "error": ["code": "unhealthy", "message": why], "result": result])
            } else {
                conn.send(["id": id ?? NSNull(), "ok": true, "result": result])
            }
        }
        let observer = engine.observe { notice in
            switch notice {
            case .changed(let s, let st, let reason, let ms):
                conn.send(["id": id ?? NSNull(), "event": "progress", "service": s.rawValue, "state": st.rawValue,
                           "reason": reason, "elapsedMs": ms])
            case .step(let name, let message):
                conn.send(["id": id ?? NSNull(), "event": "step", "step": name, "message": message])
            }
            // Observers run on the engine's queue; the check reads the engine, so it runs elsewhere.
            DispatchQueue.global().async(execute: check)
        }
        token.withValue { $0 = observer }
        conn.whenClosed { [weak self] in self?.engine.stopObserving(observer) }
        check()
    }

    private func streamLogs(_ services: [ServiceID], tail: Int, follow: Bool, id: Int?, _ conn: ControlConnection) {
        let names = Set(services.map(\.rawValue))
        var lines: [LogStore.Line] = []
        for s in services { lines += engine.logs.tail(s.rawValue, tail) }
        lines.sort { $0.time < $1.time }
        for l in lines { conn.send(["id": id ?? NSNull(), "event": "log", "service": l.service, "time": l.time, "line": l.text]) }
        guard follow else { conn.send(["id": id ?? NSNull(), "ok": true, "result": [:]]); return }
        let token = engine.logs.subscribe { l in
            guard names.contains(l.service) else { return }
            conn.send(["id": id ?? NSNull(), "event": "log", "service": l.service, "time": l.time, "line": l.text])
        }
        let logs = engine.logs
        conn.whenClosed { logs.unsubscribe(token) }
    }

    // MARK: status

    public func statusJSON() -> [String: Any] {
        let c = engine.config
        let now = wallClockSeconds()
        var list: [[String: Any]] = []
        var allHealthy = true
        let reloads = engine.reloadRecords()
        let cached = extrasCache.current
        for snap in engine.snapshot() {
            let s = snap.service, sup = snap.supervisor
            if snap.wanted && sup.state != .healthy { allHealthy = false }
            if !snap.wanted { allHealthy = false }
            var o: [String: Any] = ["name": s.rawValue, "state": sup.state.rawValue, "reason": sup.reason,
                                    "since": sup.since, "restarts": sup.restarts, "wanted": snap.wanted]
            switch c.services[s]?.kind {
            case .postgres: o["url"] = c.postgresURL(redacted: true)
            case .valkey: o["url"] = c.valkeyURL(redacted: true)
            default: if let port = c.port(of: s) { o["url"] = "http://\(c.urlHost):\(port)" }
            }
            if let p = sup.lastProbe {
                let outcome: String
                switch p { case .ready: outcome = "ready"; case .notReady: outcome = "not-ready"; case .fatal: outcome = "fatal" }
                o["health"] = ["outcome": outcome, "reason": p.reason, "latencyMs": ((sup.lastProbeLatency ?? 0) * 100).rounded() / 100]
            }
            if let r = snap.running {
                if let pid = r.pid { o["pid"] = Int(pid) }
                if let cid = r.containerID { o["containerId"] = cid }
                if let cn = r.containerName { o["container"] = cn }
                o["uptimeSeconds"] = ((now - r.startedAt) * 10).rounded() / 10
            }
            if let e = sup.lastExit {
                switch e {
                case .exited(let code): o["lastExit"] = ["code": Int(code)]
                case .signalled(let sig): o["lastExit"] = ["signal": Int(sig), "signalName": signalName(sig)]
                }
            }
            if !snap.dependencyOutage.isEmpty { o["dependencyOutage"] = snap.dependencyOutage.map(\.rawValue) }
            if let r = reloads[s] {
                var rj: [String: Any] = ["file": r.file, "at": r.at, "action": r.action, "outcome": r.outcome, "count": r.count]
                if let ms = r.healthyMilliseconds { rj["healthyMs"] = ms }
                o["reload"] = rj
            }
            if sup.state == .crashed || sup.state == .failed {
                o["logTail"] = engine.logs.tailIncludingFile(s.rawValue, 20)
            }
            o["details"] = engine.runtime.details(s, config: c)
            if sup.state == .healthy, let extras {
                // From the background refresh when recent; computed here when the service just became healthy.
                let values = now - cached.at < 5 ? cached.values[s] ?? extras(s, c) : extras(s, c)
                for (k, v) in values { o[k] = v }
            }
            list.append(o)
        }
        var watch: [String: Any] = ["enabled": reloader != nil]
        if let r = reloader {
            watch["directories"] = r.watchCount
            if let m = r.limitMessage { watch["problem"] = m }
        }
        return ["project": c.projectName, "directory": paths.root, "runtime": engine.runtime.kind, "runtimeReason": runtimeReason, "watch": watch,
                "daemon": ["pid": Int(getpid()), "uptimeSeconds": ((now - engine.startedAt) * 10).rounded() / 10],
                "healthy": allHealthy, "services": list]
    }
}
