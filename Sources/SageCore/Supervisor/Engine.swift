import Dispatch
import SageSystem

/// What the engine tells the people watching (the `up` progress lines, `logs -f`).
public enum EngineNotice: Sendable, Equatable {
    case changed(ServiceID, ServiceState, reason: String, elapsedMilliseconds: Int)
    case step(String, String)  // (name, message) e.g. ("migrate", "applied 3 migrations in 41 ms")
}

/// How the engine makes a probe for a service (a seam: the daemon uses the real wire probes).
public typealias ProbeFactory = @Sendable (ServiceID, Config) -> any Probe

/// A hook run after postgres and valkey are healthy and before the backend starts (migrations and seeds).
public typealias BeforeAppsHook = @Sendable (Config, LogStore) throws -> [String]

/// The one place that decides. It owns a supervisor per service and carries out their actions through the runtime
/// and the probes. All its state lives on `queue`; runtime calls and probes run on worker threads and report back.
public final class Engine: @unchecked Sendable {
    public let queue = DispatchQueue(label: "sagedev.engine")
    private let workers = DispatchQueue(label: "sagedev.workers", attributes: .concurrent)
    public private(set) var config: Config
    public let runtime: any ServiceRuntime
    public let logs: LogStore
    private let probeFactory: ProbeFactory
    private let backoff: BackoffPolicy
    private let liveness: LivenessPolicy
    /// Readiness polls: about every 10 ms at first, backing off gently to 250 ms by 5 s.
    private let schedule = ProbeSchedule()
    private var supervisors: [ServiceID: ServiceSupervisor] = [:]
    private var running: [ServiceID: RunningService] = [:]
    private var generation: [ServiceID: Int] = [:]
    private var readinessStarted: [ServiceID: UInt64] = [:]
    private var wanted: Set<ServiceID> = []
    private var hook: BeforeAppsHook?
    private var hookState: HookState = .pending
    private var observers: [Int: @Sendable (EngineNotice) -> Void] = [:]
    private var nextObserver = 0
    public let startedAt = wallClockSeconds()

    enum HookState: Equatable { case pending, running, done, failed(String) }

    public init(config: Config, runtime: any ServiceRuntime, logs: LogStore, probes: @escaping ProbeFactory,
                backoff: BackoffPolicy = BackoffPolicy(), liveness: LivenessPolicy = LivenessPolicy()) {
        self.config = config; self.runtime = runtime; self.logs = logs; self.probeFactory = probes
        self.backoff = backoff; self.liveness = liveness
        for s in config.services.serviceIDs { supervisors[s] = ServiceSupervisor(service: s, backoff: backoff, liveness: liveness) }
        runtime.setEventHandler { [weak self] event in
            guard let self else { return }
            self.queue.async { self.runtimeReported(event) }
        }
    }

    public func setBeforeAppsHook(_ hook: BeforeAppsHook?) { queue.sync { self.hook = hook } }

    // MARK: observing

    public func observe(_ f: @escaping @Sendable (EngineNotice) -> Void) -> Int {
        queue.sync { nextObserver += 1; observers[nextObserver] = f; return nextObserver }
    }
    public func stopObserving(_ token: Int) { queue.async { self.observers[token] = nil } }
    private func notify(_ n: EngineNotice) { for o in observers.values { o(n) } }

    // MARK: commands (call from any thread)

    /// Takes over services a previous daemon left running.
    public func adoptRunning() {
        let found = runtime.adopt(config)
        queue.sync {
            for (s, r) in found {
                running[s] = r
                wanted.insert(s)
                bump(s)
                readinessStarted[s] = monotonicNanoseconds()
                let actions = supervisors[s]!.adopted(pid: r.pid, now: wallClockSeconds())
                carryOut(actions, for: s)
            }
            // Adopted apps mean the migrate/seed step ran for this data already.
            if found.keys.contains(where: needsDatabaseStep) { hookState = .done }
        }
    }

    /// Asks for every service to run. Ports of services not already running are checked first; a conflict starts
    /// nothing and is returned.
    public func up(_ services: [ServiceID]? = nil, checkPorts: Bool = true) -> String? {
        let services = services ?? queue.sync { config.services.serviceIDs }
        let toStart: [ServiceID] = !checkPorts ? [] : queue.sync {
            services.filter { s in
                let st = supervisors[s]!.state
                return st == .stopped || st == .failed
            }
        }
        var conflicts: [String] = []
        for s in toStart {
            guard let port = config.port(of: s) else { continue }
            if let c = PortCheck.check(host: config.bindAddress == "0.0.0.0" ? "0.0.0.0" : config.bindAddress, port: port) {
                conflicts.append("\(s.rawValue): \(c.description); set \(config.services[s]?.portKey ?? "its port") in .env or stop that process")
            }
        }
        if !conflicts.isEmpty { return conflicts.joined(separator: "\n") }
        queue.sync {
            for s in services {
                wanted.insert(s)
                if supervisors[s]!.state == .failed { _ = supervisors[s]!.handle(.stopRequested, now: wallClockSeconds()) }
            }
            if case .failed = hookState { hookState = .pending }
            reconcile()
        }
        return nil
    }

    /// Stops services (dependents first) and waits until they are down.
    public func stop(_ services: [ServiceID], deadline: Deadline = .after(seconds: 60)) {
        let group = DispatchGroup()
        for s in config.services.stopOrder where services.contains(s) {
            queue.sync {
                wanted.remove(s)
                bump(s)
                let st = supervisors[s]!.state
                if st == .stopped { return }
                _ = supervisors[s]!.handle(.stopRequested, now: wallClockSeconds())
                notify(.changed(s, .stopping, reason: "stop requested", elapsedMilliseconds: 0))
            }
            group.enter()
            workers.async {
                do { try self.runtime.stop(s, config: self.config) } catch {
                    self.logs.appendLine(s.rawValue, "sagedev: stop failed: \(error)")
                }
                self.queue.async {
                    self.running[s] = nil
                    _ = self.supervisors[s]!.handle(.stopped, now: wallClockSeconds())
                    if self.supervisors[s]!.state != .stopped {
                        // A crash or failure state: the process is gone all the same.
                        self.supervisors[s] = ServiceSupervisor(service: s, backoff: self.supervisors[s]!.backoff, liveness: self.supervisors[s]!.liveness)
                    }
                    self.notify(.changed(s, .stopped, reason: "stopped", elapsedMilliseconds: 0))
                    group.leave()
                }
            }
            // Dependents first: wait for this one before stopping what it depends on.
            _ = group.wait(timeout: .now() + .milliseconds(Int(deadline.remainingMilliseconds)))
        }
    }

    /// Stops then starts services again (their supervisors start fresh, so a `failed` service gets a new chance).
    public func restart(_ services: [ServiceID], afterFileChange: Bool = false) -> String? {
        stop(services)
        queue.sync {
            for s in services {
                supervisors[s] = ServiceSupervisor(service: s, backoff: supervisors[s]!.backoff, liveness: supervisors[s]!.liveness)
                if afterFileChange { supervisors[s]!.noteReload() }
            }
        }
        // The ports were ours a moment ago: no pre-check (a port still being released would leave the service
        // unwanted). The spawn's own check and the restart backoff cover a port that is slow to free.
        return up(services, checkPorts: false)
    }

    /// Marks the migrate/seed step to be run again before the backend next starts.
    public func resetHook() { queue.sync { hookState = .pending } }

    /// Replaces the configuration (after a valid .env change).
    public func updateConfig(_ c: Config) {
        queue.sync {
            config = c
            for s in c.services.serviceIDs where supervisors[s] == nil {
                supervisors[s] = ServiceSupervisor(service: s, backoff: backoff, liveness: liveness)
            }
        }
    }

    // MARK: hot reload

    /// The last reload of a service, for `status`.
    public struct ReloadRecord: Sendable, Equatable {
        public var file: String
        public var at: Double              // wall clock of the change
        public var action: String          // "self", "restart", "install+restart"
        public var healthyMilliseconds: Int?
        public var outcome: String         // "reloading", "reloaded", "crashed", "no restart needed"
        public var count: Int
    }
    private var reloads: [ServiceID: ReloadRecord] = [:]
    private var reloadStarted: [ServiceID: UInt64] = [:]
    private var reloadMarker: [ServiceID: String?] = [:]
    private var reloadOutageSeen: Set<ServiceID> = []
    /// How long a self-reloading server may take to come back before it counts as crashed.
    public var reloadTimeoutSeconds = 5.0
    /// With no restart observed this long after a change, the dev server missed it (Node's --watch, for one, stops
    /// watching a file that an editor saved by rename): sagedev restarts the service itself.
    public var reloadSettleSeconds = 1.0

    public func reloadRecords() -> [ServiceID: ReloadRecord] { queue.sync { reloads } }

    private func beginReload(_ s: ServiceID, file: String, action: String, changedAt: UInt64, continuing: Bool = false) {
        let count = (reloads[s]?.count ?? 0) + (continuing ? 0 : 1)
        reloads[s] = ReloadRecord(file: file, at: wallClockSeconds() - Double(monotonicNanoseconds() &- changedAt) / 1e9,
                                  action: action, healthyMilliseconds: nil, outcome: "reloading", count: count)
        reloadStarted[s] = changedAt
    }

    /// A source file of a self-reloading service changed: the dev server restarts itself; confirm it through the
    /// probe. `changedAt` is when the change was seen (monotonic), so "reloaded in N ms" counts from the save.
    public func reloadTriggered(_ s: ServiceID, file: String, changedAt: UInt64 = monotonicNanoseconds()) {
        queue.async {
            guard self.wanted.contains(s) else { return }
            let alive = self.running[s] != nil
            self.beginReload(s, file: file, action: "self", changedAt: changedAt)
            self.bump(s)
            self.readinessStarted[s] = monotonicNanoseconds()
            self.reloadOutageSeen.remove(s)
            let before = self.supervisors[s]!.state
            let a = self.supervisors[s]!.handle(.reloadTriggered(file, processAlive: alive), now: wallClockSeconds())
            // The marker is taken after the change: a restart the dev server already began still shows up as a
            // change later, because its new app process has a new pid.
            self.reloadMarker[s] = alive ? self.runtime.restartMarker(s) : nil
            if self.supervisors[s]!.state == .reloading {
                let gen = self.generation[s]!
                self.queue.asyncAfter(deadline: .now() + self.reloadTimeoutSeconds) {
                    guard self.generation[s] == gen, self.supervisors[s]!.state == .reloading else { return }
                    self.handle(s, .startDeadlinePassed)
                }
            }
            if before != self.supervisors[s]!.state {
                self.notify(.changed(s, self.supervisors[s]!.state, reason: self.supervisors[s]!.reason, elapsedMilliseconds: 0))
            }
            self.carryOut(a, for: s)
        }
    }

    /// A source change for a service in restart mode, or after an install: restart it and time it from the change.
    public func restartForReload(_ s: ServiceID, file: String, action: String, changedAt: UInt64 = monotonicNanoseconds(),
                                 continuing: Bool = false) {
        queue.sync { beginReload(s, file: file, action: action, changedAt: changedAt, continuing: continuing) }
        if let conflict = restart([s], afterFileChange: true) { reloadFailed(s, file: file, action: action, reason: conflict) }
    }

    /// Notes a reload that failed before any restart (e.g. the install command failed).
    public func reloadFailed(_ s: ServiceID, file: String, action: String, reason: String) {
        queue.async {
            let count = (self.reloads[s]?.count ?? 0) + 1
            self.reloads[s] = ReloadRecord(file: file, at: wallClockSeconds(), action: action, healthyMilliseconds: nil,
                                           outcome: "failed: \(reason)", count: count)
            self.notify(.step("reload", "\(s.rawValue): \(reason)"))
        }
    }

    /// Runs the migrate/seed step again (a migration file changed) while the apps keep running.
    public func rerunHook(reason: String) {
        queue.async {
            guard self.hookState != .running else { return }
            self.hookState = .pending
            self.notify(.step("database", reason))
            self.runHook()
        }
    }

    /// In `reloading`, a ready answer from the old process is not a reload: wait until the restart marker moves
    /// (or, where the runtime cannot tell, until an outage was seen), or until the settle time says no restart came.
    private func confirmReload(_ s: ServiceID, _ outcome: ProbeOutcome) -> ProbeOutcome {
        guard supervisors[s]!.state == .reloading, let started = reloadStarted[s] else { return outcome }
        guard case .ready(let why) = outcome else { reloadOutageSeen.insert(s); return outcome }
        let elapsed = Double(monotonicNanoseconds() &- started) / 1e9
        let marker = reloadMarker[s] ?? nil
        let restarted = marker != nil ? runtime.restartMarker(s) != marker : reloadOutageSeen.contains(s)
        if restarted { return .ready(why) }
        if elapsed >= reloadSettleSeconds {
            let file = reloads[s]?.file ?? "a file"
            let changedAt = started
            bump(s)  // no more probes for this reload: the restart takes over
            DispatchQueue.global().async {
                self.logs.appendLine(s.rawValue, "sagedev: the dev server did not reload within \(Int(self.reloadSettleSeconds * 1000)) ms of the change; restarting it")
                self.restartForReload(s, file: file, action: "restart (the dev server missed the change)", changedAt: changedAt, continuing: true)
            }
            return .notReady("the dev server did not reload; restarting it")
        }
        return .notReady("waiting for the dev server to restart")
    }

    private func noteHealthyAfterReload(_ s: ServiceID) {
        guard let started = reloadStarted[s], reloads[s] != nil else { return }
        let ms = Int(millisecondsSince(started))
        reloads[s]!.healthyMilliseconds = ms
        if reloads[s]!.outcome == "reloading" { reloads[s]!.outcome = "reloaded" }
        reloadStarted[s] = nil
        notify(.step("reload", "\(s.rawValue) \(reloads[s]!.outcome) in \(ms) ms after a change to \(reloads[s]!.file)"))
    }

    // MARK: inspection

    public struct ServiceSnapshot: Sendable {
        public var service: ServiceID
        public var supervisor: ServiceSupervisor
        public var running: RunningService?
        public var wanted: Bool
        public var dependencyOutage: [ServiceID]
    }

    public func snapshot() -> [ServiceSnapshot] {
        queue.sync {
            config.services.serviceIDs.map { s in
                let outage = runningDependencies(s).filter { d in
                    let st = supervisors[d]!.state
                    return wanted.contains(s) && supervisors[s]!.state != .stopped && st != .healthy && st != .reloading
                }
                return ServiceSnapshot(service: s, supervisor: supervisors[s]!, running: running[s], wanted: wanted.contains(s),
                                       dependencyOutage: outage)
            }
        }
    }

    public var hookFailure: String? { queue.sync { if case .failed(let m) = hookState { return m } else { return nil } } }

    /// Whether every wanted service is healthy; a failure message when one gave up (or the hook failed).
    public func upOutcome(_ services: [ServiceID]) -> (done: Bool, failure: (ServiceID?, String)?) {
        queue.sync {
            if case .failed(let m) = hookState { return (true, (nil, m)) }
            for s in services where supervisors[s]!.state == .failed { return (true, (s, supervisors[s]!.reason)) }
            let all = services.allSatisfy { supervisors[$0]!.state == .healthy }
            return (all, nil)
        }
    }

    // MARK: the loop (on queue)

    private func bump(_ s: ServiceID) { generation[s, default: 0] += 1 }

    /// Whether `s` waits for the database step (it depends on the database job, directly or through others).
    private func needsDatabaseStep(_ s: ServiceID) -> Bool {
        config.services.dependencies(of: s).contains { config.services[$0]?.isJob == true }
    }

    /// The direct dependencies of `s` that are running services (the database job is the hook's business).
    private func runningDependencies(_ s: ServiceID) -> [ServiceID] {
        (config.services[s]?.dependsOn ?? []).map(\.id).filter { supervisors[$0] != nil }
    }

    /// Starts what is wanted and whose dependencies are healthy.
    private func reconcile() {
        let dataReady = supervisors[.postgres]!.state == .healthy && supervisors[.valkey]!.state == .healthy
        if dataReady && hookState == .pending && wanted.contains(where: needsDatabaseStep) {
            runHook()
        }
        for s in config.services.serviceIDs where wanted.contains(s) {
            let sup = supervisors[s]!
            guard sup.state == .stopped else { continue }
            let depsHealthy = runningDependencies(s).allSatisfy { supervisors[$0]!.state == .healthy }
            guard depsHealthy else { continue }
            if needsDatabaseStep(s) && hookState != .done { continue }
            let a = supervisors[s]!.handle(.startRequested, now: wallClockSeconds())
            notify(.changed(s, supervisors[s]!.state, reason: "starting", elapsedMilliseconds: 0))
            carryOut(a, for: s)
        }
    }

    private func runHook() {
        guard let hook else { hookState = .done; return }
        hookState = .running
        let c = config
        workers.async {
            let start = monotonicNanoseconds()
            do {
                let steps = try hook(c, self.logs)
                self.queue.async {
                    self.hookState = .done
                    for m in steps { self.notify(.step("database", m)) }
                    self.notify(.step("database", "ready in \(Int(millisecondsSince(start))) ms"))
                    self.reconcile()
                }
            } catch {
                self.queue.async {
                    self.hookState = .failed("\(error)")
                    self.notify(.step("database", "failed: \(error)"))
                }
            }
        }
    }

    private func handle(_ s: ServiceID, _ event: SupervisorEvent) {
        let before = supervisors[s]!.state
        let actions = supervisors[s]!.handle(event, now: wallClockSeconds())
        let after = supervisors[s]!.state
        if after == .healthy && before != .healthy { noteHealthyAfterReload(s) }
        if after == .crashed && reloadStarted[s] != nil { reloads[s]?.outcome = "crashed" }
        if before != after || actions.contains(where: { if case .gaveUp = $0 { return true }; return false }) {
            let elapsed = readinessStarted[s].map { Int(millisecondsSince($0)) } ?? 0
            notify(.changed(s, after, reason: supervisors[s]!.reason, elapsedMilliseconds: elapsed))
        }
        carryOut(actions, for: s)
    }

    private func carryOut(_ actions: [SupervisorAction], for s: ServiceID) {
        for a in actions {
            switch a {
            case .spawn:
                bump(s)
                let gen = generation[s]!
                let c = config
                readinessStarted[s] = monotonicNanoseconds()
                workers.async {
                    do {
                        if let port = c.port(of: s), let conflict = PortCheck.check(host: c.bindAddress, port: port) {
                            throw RuntimeError(s, "\(conflict.description); set \(c.services[s]?.portKey ?? "its port") in .env or stop that process")
                        }
                        let r = try self.runtime.start(s, config: c)
                        self.queue.async {
                            guard self.generation[s] == gen else { return }
                            self.running[s] = r
                            self.handle(s, .started(pid: r.pid))
                            self.armStartDeadline(s, gen)
                        }
                    } catch {
                        self.logs.appendLine(s.rawValue, "sagedev: start failed: \(error)")
                        self.queue.async {
                            guard self.generation[s] == gen else { return }
                            self.handle(s, .startFailed("\(error)"))
                        }
                    }
                }
            case .probeReadiness:
                let elapsed = readinessStarted[s].map { millisecondsSince($0) } ?? 0
                probe(s, after: schedule.interval(afterMilliseconds: elapsed) / 1000)
            case .scheduleLivenessProbe(let after):
                probe(s, after: after)
            case .scheduleRestart(let after):
                let gen = generation[s]!
                queue.asyncAfter(deadline: .now() + after) {
                    guard self.generation[s] == gen else { return }
                    self.handle(s, .restartDelayElapsed)
                }
            case .stop:
                bump(s)
                let c = config
                workers.async {
                    try? self.runtime.stop(s, config: c)
                    self.queue.async { self.running[s] = nil }
                }
            case .becameHealthy:
                reconcile()
            case .gaveUp(let why):
                logs.appendLine(s.rawValue, "sagedev: \(why)")
            }
        }
    }

    private func armStartDeadline(_ s: ServiceID, _ gen: Int) {
        // A start that follows a file change gets the reload timeout: broken code should show as crashed quickly.
        let timeout = supervisors[s]!.reloadPending ? reloadTimeoutSeconds : supervisors[s]!.liveness.startTimeoutSeconds
        queue.asyncAfter(deadline: .now() + timeout) {
            guard self.generation[s] == gen, self.supervisors[s]!.state == .starting else { return }
            self.handle(s, .startDeadlinePassed)
        }
    }

    /// Probes after a delay, on a worker thread; the answer is dropped if the service moved on meanwhile.
    private func probe(_ s: ServiceID, after seconds: Double) {
        let gen = generation[s] ?? 0
        let probe = probeFactory(s, config)
        let run: @Sendable () -> Void = {
            let start = monotonicNanoseconds()
            let outcome = probe.check(deadline: .after(seconds: 2))
            let latency = millisecondsSince(start)
            self.queue.async {
                guard self.generation[s] == gen else { return }
                self.handle(s, .probed(self.confirmReload(s, outcome), latencyMilliseconds: latency))
            }
        }
        if seconds <= 0 { workers.async(execute: run) } else { workers.asyncAfter(deadline: .now() + seconds, execute: run) }
    }

    private func runtimeReported(_ e: RuntimeEvent) {
        switch e {
        case .exited(let s, let status):
            running[s] = nil
            logs.appendLine(s.rawValue, "sagedev: process exited with \(status)")
            handle(s, .exited(status))
        }
    }
}

