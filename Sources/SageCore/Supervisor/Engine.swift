import Dispatch
import SageSystem

/// How the engine makes a probe for a service (a seam: the daemon uses the real wire probes).
public typealias ProbeFactory = @Sendable (ServiceID, Config) -> any Probe

/// Runs a job of the graph to completion (the database step: migrations, seeds, the reset template). Returns the
/// steps it reports; throws a message that says what failed.
public typealias JobRunner = @Sendable (JobSpec, Config, LogStore) throws -> [String]

/// The shell around `StackMachine`: it owns the queue the machine lives on, feeds it events with the time, and
/// carries its actions out through the runtime, the probes, the job runner and timers. Runtime calls, probes and
/// jobs run on worker threads and report back as events. Readers (`config`, `snapshot`, `upOutcome`, …) get the
/// machine as it was after the last event, without waiting for the queue.
public final class Engine: @unchecked Sendable {
    private let queue = DispatchQueue(label: "sagedev.engine")
    private let workers = DispatchQueue(label: "sagedev.workers", attributes: .concurrent)
    public let runtime: any ServiceRuntime
    public let logs: LogStore
    private let probeFactory: ProbeFactory
    public let startedAt = wallClockSeconds()

    // On `queue` only.
    private var machine: StackMachine
    private var jobRunner: JobRunner?
    private var observers: [Int: @Sendable (EngineNotice) -> Void] = [:]
    private var nextObserver = 0
    private struct Waiter { var id: Int; var condition: @Sendable (StackMachine) -> Bool; var signal: DispatchSemaphore }
    private var waiters: [Waiter] = []
    private var nextWaiter = 0

    /// The machine after the last event, for readers on any thread.
    private let published: Locked<StackMachine>
    /// Readiness probes waiting out their pause, by service: a line in the service's log runs one at once.
    private let wakeable = Locked<[ServiceID: Once]>([:])

    public init(config: Config, runtime: any ServiceRuntime, logs: LogStore, probes: @escaping ProbeFactory,
                backoff: BackoffPolicy = BackoffPolicy(), liveness: LivenessPolicy = LivenessPolicy(),
                schedule: ProbeSchedule = ProbeSchedule()) {
        var policy = StackPolicy()
        policy.backoff = backoff; policy.liveness = liveness; policy.schedule = schedule
        let m = StackMachine(config: config, policy: policy)
        self.machine = m
        self.published = Locked(m)
        self.runtime = runtime; self.logs = logs; self.probeFactory = probes
        runtime.setEventHandler { [weak self] event in
            guard let self else { return }
            switch event {
            case .exited(let s, let status):
                self.queue.async { self.send(.processExited(s, status)) }
            }
        }
        let wakeable = self.wakeable, workers = self.workers
        _ = logs.subscribe { line in
            guard let probe = wakeable.withValue({ $0.removeValue(forKey: ServiceID(line.service)) }) else { return }
            workers.async { probe.run() }
        }
    }

    /// The configuration the machine holds now (a value: later changes do not reach it).
    public var config: Config { published.current.config }

    /// Runs the graph's jobs (the daemon passes the database step). Without one, a job succeeds at once.
    public func setJobRunner(_ runner: JobRunner?) { queue.sync { jobRunner = runner } }

    // MARK: observing

    public func observe(_ f: @escaping @Sendable (EngineNotice) -> Void) -> Int {
        queue.sync { nextObserver += 1; observers[nextObserver] = f; return nextObserver }
    }
    public func stopObserving(_ token: Int) { queue.async { self.observers[token] = nil } }

    // MARK: commands (call from any thread but the engine's queue)

    /// Takes over services a previous daemon left running.
    public func adoptRunning() {
        let found = runtime.adopt(config)
        queue.sync { send(.adopted(found)) }
    }

    /// Asks for every service to run (with what it depends on). Ports of services not already running are checked
    /// first; a conflict starts nothing and is returned.
    public func up(_ services: [ServiceID]? = nil, checkPorts: Bool = true) -> String? {
        let m = published.current
        let services = services ?? m.serviceIDs
        if checkPorts {
            let c = m.config
            var conflicts: [String] = []
            for s in services {
                guard let st = m.units[s]?.supervisor.state, st == .stopped || st == .failed, let port = c.port(of: s) else { continue }
                if let conflict = PortCheck.check(host: c.bindAddress == "0.0.0.0" ? "0.0.0.0" : c.bindAddress, port: port) {
                    conflicts.append("\(s.rawValue): \(conflict.description); set \(c.services[s]?.portKey ?? "its port") in .env or stop that process")
                }
            }
            if !conflicts.isEmpty { return conflicts.joined(separator: "\n") }
        }
        queue.sync { send(.commandReceived(.up(services))) }
        return nil
    }

    /// Stops services (dependents first) and waits until they are down.
    public func stop(_ ids: [ServiceID], deadline: Deadline = .after(seconds: 60)) {
        queue.sync { send(.commandReceived(.stop(ids))) }
        wait(deadline) { $0.stopsSettled(ids) }
    }

    /// Stops every wanted service that depends on `id` (what a database reset stops), dependents first, and waits
    /// until they are down. Returns them, to be started again with `start`.
    public func stopDependents(of id: ServiceID, deadline: Deadline = .after(seconds: 60)) -> [ServiceID] {
        let dependents: [ServiceID] = queue.sync {
            let d = machine.wantedDependents(of: id)
            send(.commandReceived(.stop(d)))
            return d
        }
        wait(deadline) { $0.stopsSettled(dependents) }
        return dependents
    }

    /// Starts services again (after `stopDependents`), without the port pre-check: their ports were ours.
    public func start(_ ids: [ServiceID]) {
        queue.sync { send(.commandReceived(.up(ids))) }
    }

    /// Stops then starts services again (their supervisors start fresh, so a `failed` service gets a new chance).
    /// Returns once they are stopped; the start is under way.
    public func restart(_ list: [ServiceID], afterFileChange: Bool = false) -> String? {
        queue.sync { send(.commandReceived(.restart(list, afterFileChange: afterFileChange))) }
        wait(.after(seconds: 60)) { $0.stopsSettled(list) }
        return nil
    }

    /// Replaces the configuration (after a valid .env change).
    public func updateConfig(_ c: Config) {
        queue.sync { send(.commandReceived(.replaceConfig(c))) }
    }

    // MARK: hot reload

    public typealias ReloadRecord = SageCore.ReloadRecord

    public func reloadRecords() -> [ServiceID: ReloadRecord] { published.current.units.compactMapValues(\.reload) }

    /// Reads what a refused app listens on (see `ListenDiagnosis`).
    public let listenInspector = ListenInspector()

    /// Failed builds reported by the apps' compilers, for `status`.
    public func buildErrorRecords() -> [ServiceID: BuildError] { published.current.units.compactMapValues(\.buildError) }

    /// An app's compiler reported a build (from its log): `error` is its first error line, nil when it succeeded.
    public func buildReported(_ s: ServiceID, error: String?, errors: Int = 1) {
        queue.async { self.send(.commandReceived(.buildReported(s, error: error, errors: errors))) }
    }

    /// A source file of a self-reloading service changed: the dev server restarts itself; the probe confirms it.
    /// `changedAt` is when the change was seen (monotonic), so "reloaded in N ms" counts from the save.
    public func reloadTriggered(_ s: ServiceID, file: String, changedAt: UInt64 = monotonicNanoseconds()) {
        let marker = runtime.restartMarker(s)
        queue.async {
            self.send(.commandReceived(.reloadTriggered(s, file: file, changedAt: changedAt, restartMarker: marker)))
        }
    }

    /// A source change for a service in restart mode: restart it and time it from the change. Returns once the
    /// service is stopped; the start is under way.
    public func restartForReload(_ id: ServiceID, file: String, action: String, changedAt: UInt64 = monotonicNanoseconds()) {
        queue.sync { send(.commandReceived(.restartForReload(id, file: file, action: action, changedAt: changedAt))) }
        wait(.after(seconds: 60)) { $0.stopsSettled([id]) }
    }

    /// The install command after a manifest change ended: on success the service restarts (returns once it is
    /// stopped); a failure is recorded as the reload's outcome.
    public func installFinished(_ id: ServiceID, file: String, changedAt: UInt64, failure: String?) {
        queue.sync { send(.commandReceived(.installFinished(id, file: file, changedAt: changedAt, failure: failure))) }
        wait(.after(seconds: 60)) { $0.stopsSettled([id]) }
    }

    /// Notes a reload that failed before any restart (e.g. an invalid `.env`).
    public func reloadFailed(_ s: ServiceID, file: String, action: String, reason: String) {
        queue.async {
            self.send(.commandReceived(.reloadFailed(s, file: file, action: action, reason: reason)))
        }
    }

    /// Runs a job again (a migration file changed) while its dependents keep running.
    public func rerunJob(_ id: ServiceID = .database, reason: String) {
        queue.async { self.send(.commandReceived(.rerunJob(id, reason: reason))) }
    }

    // MARK: inspection

    public struct ServiceSnapshot: Sendable {
        public var service: ServiceID
        public var supervisor: ServiceSupervisor
        public var running: RunningService?
        public var wanted: Bool
        public var dependencyOutage: [ServiceID]
    }

    /// The long-running services as the machine saw them after its last event.
    public func snapshot() -> [ServiceSnapshot] {
        let m = published.current
        return m.serviceIDs.compactMap { id in
            guard let u = m.units[id] else { return nil }
            return ServiceSnapshot(service: id, supervisor: u.supervisor, running: u.running, wanted: u.wanted,
                                   dependencyOutage: m.dependencyOutage(of: id))
        }
    }

    /// The machine as it was after its last event (for tests and tools).
    public var machineSnapshot: StackMachine { published.current }

    /// Whether every one of `services` is healthy; a failure message when one gave up or a job it needs failed
    /// (the failure names the service or the job).
    public func upOutcome(_ services: [ServiceID]) -> (done: Bool, failure: (ServiceID?, String)?) {
        let o = published.current.upOutcome(services)
        return (o.done, o.failure.map { ($0.0, $0.1) })
    }

    // MARK: the loop (on queue)

    /// Blocks the caller (never the queue) until `condition` holds of the machine, or the deadline passes.
    private func wait(_ deadline: Deadline, _ condition: @escaping @Sendable (StackMachine) -> Bool) {
        let signal = DispatchSemaphore(value: 0)
        let id: Int? = queue.sync {
            if condition(machine) { return nil }
            nextWaiter += 1
            waiters.append(Waiter(id: nextWaiter, condition: condition, signal: signal))
            return nextWaiter
        }
        guard let id else { return }
        if signal.wait(timeout: .now() + .milliseconds(Int(deadline.remainingMilliseconds))) == .timedOut {
            queue.sync { waiters.removeAll { $0.id == id } }
        }
    }

    private func send(_ event: StackEvent) {
        dispatchPrecondition(condition: .onQueue(queue))
        let actions = machine.handle(event, now: .now())
        published.withValue { $0 = machine }
        // The work first (a spawn, a probe, a job), then the notices: an observer writes to a client's socket,
        // which should not delay the next service's start.
        for a in actions where !a.isNotice { carryOut(a) }
        for a in actions where a.isNotice { carryOut(a) }
        if !waiters.isEmpty {
            let m = machine
            waiters.removeAll { w in
                guard w.condition(m) else { return false }
                w.signal.signal()
                return true
            }
        }
    }

    private func carryOut(_ action: StackAction) {
        let c = machine.config
        switch action {
        case .spawn(let id, let gen):
            workers.async {
                do {
                    // Each runtime checks the port itself: a compose service's own container may hold it.
                    let r = try self.runtime.start(id, config: c)
                    self.queue.async { self.send(.processStarted(id, generation: gen, r)) }
                } catch {
                    self.queue.async { self.send(.processStartFailed(id, generation: gen, "\(error)")) }
                }
            }
        case .stop(let id):
            workers.async {
                let failure: String?
                do { try self.runtime.stop(id, config: c); failure = nil } catch { failure = "\(error)" }
                self.queue.async { self.send(.stopFinished(id, failure: failure)) }
            }
        case .probe(let id, let gen, let after, let readMarker, let wakeOnOutput):
            let probe = probeFactory(id, c)
            // A refused app: say what its processes listen on instead (native: its process group is its pid).
            let group = c.services[id]?.isApp == true && runtime.kind == "native" ? published.current.units[id]?.running?.pid : nil
            let inspector = listenInspector
            let run: @Sendable () -> Void = {
                let start = monotonicNanoseconds()
                let checked = probe.check(deadline: .after(seconds: 2))
                let latency = millisecondsSince(start)
                var diagnosed = checked
                if checked.wasRefused, let group, let m = inspector.diagnose(id, processGroup: group, config: c) {
                    diagnosed = .notReady(m)
                }
                let outcome = diagnosed
                let marker = readMarker ? self.runtime.restartMarker(id) : nil
                self.queue.async {
                    self.send(.probed(id, generation: gen, outcome, latencyMilliseconds: latency, restartMarker: marker))
                }
            }
            if after <= 0 { workers.async(execute: run); return }
            guard wakeOnOutput else { workers.asyncAfter(deadline: .now() + after, execute: run); return }
            let once = Once(run)
            wakeable.withValue { $0[id] = once }
            workers.asyncAfter(deadline: .now() + after) { [wakeable] in
                wakeable.withValue { if $0[id] === once { $0[id] = nil } }
                once.run()
            }
        case .runJob(let id, let gen, let spec):
            guard let runner = jobRunner else {
                queue.async { self.send(.jobFinished(id, generation: gen, .succeeded([]))) }
                return
            }
            let logs = self.logs
            workers.async {
                let result: JobResult
                do { result = .succeeded(try runner(spec, c, logs)) } catch { result = .failed("\(error)") }
                self.queue.async { self.send(.jobFinished(id, generation: gen, result)) }
            }
        case .scheduleTimer(let token, let after):
            queue.asyncAfter(deadline: .now() + after) { self.send(.timerFired(token)) }
        case .notify(let n):
            for o in observers.values { o(n) }
        case .log(let service, let line):
            logs.appendLine(service, line)
        }
    }
}

extension Instant {
    /// Both clocks, now: the shell reads them for every event; the machine never does.
    static func now() -> Instant { Instant(nanoseconds: monotonicNanoseconds(), wallSeconds: wallClockSeconds()) }
}

/// A closure that runs at most once, whichever caller comes first (a probe's timer, or a line in the log).
final class Once: @unchecked Sendable {
    private let body: Locked<(@Sendable () -> Void)?>
    init(_ body: @escaping @Sendable () -> Void) { self.body = Locked(body) }
    func run() { body.withValue { b -> (@Sendable () -> Void)? in defer { b = nil }; return b }?() }
}
