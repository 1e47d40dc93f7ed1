/// Timing of the stack: crash backoff, liveness, readiness polling and self-reload confirmation.
public struct StackPolicy: Sendable, Equatable {
    public var backoff = BackoffPolicy()
    public var liveness = LivenessPolicy()
    /// Readiness polls: about every 10 ms at first, backing off gently to 250 ms by 5 s.
    public var schedule = ProbeSchedule()
    /// How long a self-reloading server (or a start after a change) may take to come back before it counts as crashed.
    public var reloadTimeoutSeconds = 5.0
    /// With no restart observed this long after a change, the dev server missed it (Node's --watch, for one, stops
    /// watching a file that an editor saved by rename): the machine restarts the service itself.
    public var reloadSettleSeconds = 1.0
    public init() {}
}

/// The one place that decides. A pure state machine: events in (a probe answered, a process exited, a timer fired,
/// a command arrived), actions out (spawn, stop, probe after a pause, run a job, tell the observers). It owns the
/// configuration and the service graph, composes one `ServiceSupervisor` per service and one job state per job,
/// and starts each service once its dependencies meet their conditions. It reads no clock and does no I/O: the shell
/// (`Engine`) passes the time with every event and carries the actions out.
public struct StackMachine: Sendable {
    public private(set) var config: Config
    /// The services, from the configuration.
    public var graph: ServiceGraph { config.services }
    public let policy: StackPolicy
    public private(set) var units: [ServiceID: Unit] = [:]
    public private(set) var jobs: [ServiceID: Job] = [:]

    struct DependencyRecovery: Sendable, Equatable { var at: Instant; var id: ServiceID }

    /// A long-running service: its supervisor and what the machine tracks around it.
    public struct Unit: Sendable, Equatable {
        public fileprivate(set) var supervisor: ServiceSupervisor
        public fileprivate(set) var running: RunningService?
        public fileprivate(set) var wanted = false
        /// Answers (probes, spawns, timers) for an older generation are stale.
        public fileprivate(set) var generation = 0
        public fileprivate(set) var reload: ReloadRecord?
        fileprivate var readinessStartedAt: Instant?
        fileprivate var deadline: Instant?
        fileprivate var spawnInFlight = false
        fileprivate var stopInFlight = false
        /// A stop was asked for (by a command) and has not been handed to the runtime yet (dependents go first).
        fileprivate var stopPending = false
        /// The stop in flight was asked for by a command (not by the supervisor after a failed liveness probe).
        fileprivate var commandedStop = false
        /// Start again with a fresh supervisor once stopped; the flag is "after a file change".
        fileprivate var restartAfterStop: Bool?
        /// The crash backoff elapsed while the process was still being stopped.
        fileprivate var restartDelayDue = false
        // Self-reload confirmation.
        fileprivate var reloadStartedAt: UInt64?  // monotonic, when the change was seen
        fileprivate var reloadMarker: String?
        fileprivate var reloadOutageSeen = false
        /// When a service this one depends on last became healthy again, and which: a probe that was in flight
        /// across that moment may have failed on the outage.
        fileprivate var dependencyRecovered: DependencyRecovery?
        /// The compiler's last failed build, until one succeeds (status shows it).
        public fileprivate(set) var buildError: BuildError?

        init(_ supervisor: ServiceSupervisor) { self.supervisor = supervisor }
        /// Down, with nothing under way.
        public var isStopped: Bool { supervisor.state == .stopped && !stopInFlight && !spawnInFlight && !stopPending }
    }

    /// A one-shot job (the database step): runs once its dependencies are healthy, before its dependents start.
    public struct Job: Sendable, Equatable {
        public enum State: Sendable, Equatable { case pending, running, succeeded, failed(String) }
        public fileprivate(set) var state: State = .pending
        public fileprivate(set) var generation = 0
        fileprivate var startedAt: Instant?
    }

    public init(config: Config, policy: StackPolicy = StackPolicy()) {
        self.config = config; self.policy = policy
        addMissingUnits()
    }

    private mutating func addMissingUnits() {
        for spec in graph.specs {
            if spec.isJob {
                if jobs[spec.id] == nil { jobs[spec.id] = Job() }
            } else if units[spec.id] == nil {
                units[spec.id] = Unit(fresh(spec.id))
            }
        }
    }

    private func fresh(_ id: ServiceID) -> ServiceSupervisor {
        ServiceSupervisor(service: id, backoff: policy.backoff, liveness: policy.liveness)
    }

    // MARK: queries (for snapshots)

    /// The long-running services in start order.
    public var serviceIDs: [ServiceID] { graph.ids.filter { units[$0] != nil } }

    /// Dependencies of a running, wanted service that are not up (a job counts only once it failed).
    public func dependencyOutage(of id: ServiceID) -> [ServiceID] {
        guard let u = units[id], u.wanted, u.supervisor.state != .stopped, let spec = graph[id] else { return [] }
        return spec.dependsOn.compactMap { d in
            if let j = jobs[d.id] { if case .failed = j.state { return d.id }; return nil }
            guard let st = units[d.id]?.supervisor.state else { return nil }
            return st == .healthy || st == .reloading ? nil : d.id
        }
    }

    /// Every job `ids` need, directly or through others, that failed: (job, message).
    public func failedJobs(needed ids: [ServiceID]) -> [(ServiceID, String)] {
        var needed = Set(ids)
        for id in ids { needed.formUnion(graph.dependencies(of: id)) }
        return graph.ids.compactMap { id in
            guard needed.contains(id), case .failed(let m)? = jobs[id]?.state else { return nil }
            return (id, m)
        }
    }

    /// Whether every one of `ids` is healthy; a failure when one gave up or a job they need failed.
    public func upOutcome(_ ids: [ServiceID]) -> (done: Bool, failure: (ServiceID, String)?) {
        if let (job, m) = failedJobs(needed: ids).first { return (true, (job, m)) }
        for id in ids { if let u = units[id], u.supervisor.state == .failed { return (true, (id, u.supervisor.reason)) } }
        return (ids.allSatisfy { units[$0].map { $0.supervisor.state == .healthy } ?? (jobs[$0]?.state == .succeeded) }, nil)
    }

    /// The wanted services that depend on `id` (what a database reset must stop), in start order.
    public func wantedDependents(of id: ServiceID) -> [ServiceID] {
        graph.dependents(of: id).filter { units[$0]?.wanted == true }
    }

    public func isStopped(_ ids: [ServiceID]) -> Bool { ids.allSatisfy { units[$0]?.isStopped ?? true } }

    /// Whether the stops asked for on `ids` are done (a restart's start may already be under way).
    public func stopsSettled(_ ids: [ServiceID]) -> Bool {
        ids.allSatisfy { id in
            guard let u = units[id] else { return true }
            return !u.stopPending && !(u.stopInFlight && u.commandedStop) && u.restartAfterStop == nil
        }
    }

    // MARK: events

    public mutating func handle(_ event: StackEvent, now: Instant) -> [StackAction] {
        switch event {
        case .commandReceived(let c):
            return command(c, now: now)

        case .adopted(let found):
            var out: [StackAction] = []
            for id in graph.ids {
                guard let r = found[id], units[id] != nil else { continue }
                units[id]!.running = r
                units[id]!.wanted = true
                units[id]!.generation += 1
                units[id]!.readinessStartedAt = now
                let a = units[id]!.supervisor.adopted(pid: r.pid, now: now.wallSeconds)
                out += carryOut(a, for: id, now: now)
            }
            // A service left running that needs a job (directly or through others) means the job ran for this data.
            for id in graph.ids where found[id] != nil {
                for d in graph.dependencies(of: id) where jobs[d] != nil { jobs[d]!.state = .succeeded }
            }
            return out

        case .processStarted(let id, let gen, let r):
            guard units[id] != nil else { return [] }
            units[id]!.spawnInFlight = false
            units[id]!.running = r
            guard units[id]!.generation == gen else {
                // A stop was asked for while the start was under way: it can go ahead now.
                return issueStops()
            }
            var out = drive(id, .started(pid: r.pid), now: now)
            // A start that follows a file change gets the reload timeout: broken code should show as crashed quickly.
            let u = units[id]!
            let timeout = u.supervisor.reloadPending ? reloadTimeout(id) : policy.liveness.startTimeoutSeconds
            out += armDeadline(id, after: timeout, now: now)
            return out

        case .processStartFailed(let id, let gen, let why):
            guard units[id] != nil else { return [] }
            units[id]!.spawnInFlight = false
            guard units[id]!.generation == gen else { return issueStops() }
            return [.log(id.rawValue, "sagedev: start failed: \(why)")] + drive(id, .startFailed(why), now: now)

        case .processExited(let id, let status):
            guard units[id] != nil else { return [] }
            units[id]!.running = nil
            return [.log(id.rawValue, "sagedev: process exited with \(status)")] + drive(id, .exited(status), now: now)

        case .stopFinished(let id, let failure):
            return stopFinished(id, failure: failure, now: now)

        case .probed(let id, let gen, let outcome, let latency, let marker):
            guard let u = units[id], u.generation == gen else { return [] }
            var out: [StackAction] = []
            guard let confirmed = confirmReload(id, outcome, marker: marker, now: now, &out) else { return out }
            // A running service whose probe fails while something it needs is down waits on that: the failure
            // says nothing about the service itself (a backend's /health answers 503 while postgres restarts).
            let outage = dependencyOutage(of: id)
            guard !confirmed.isReady, !confirmed.isFatal else { return out + drive(id, .probed(confirmed, latencyMilliseconds: latency), now: now) }
            if !outage.isEmpty {
                let names = outage.map(\.rawValue).joined(separator: ", ")
                return out + drive(id, .probedDuringDependencyOutage(confirmed, latencyMilliseconds: latency, waitingOn: names), now: now)
            }
            // A probe that was under way when the dependency came back (a /health that hung on the outage for its
            // whole deadline) failed on the outage too: it counts as such, and the service is probed again at once.
            let startedAt = now.nanoseconds &- UInt64(max(0, latency) * 1_000_000)
            if let r = u.dependencyRecovered, r.at.nanoseconds >= startedAt,
               u.supervisor.state == .healthy || u.supervisor.state == .unhealthy {
                out += drive(id, .probedDuringDependencyOutage(confirmed, latencyMilliseconds: latency, waitingOn: r.id.rawValue), now: now)
                units[id]!.generation += 1
                out.append(.probe(id, generation: units[id]!.generation, afterSeconds: 0, readRestartMarker: false))
                return out
            }
            return out + drive(id, .probed(confirmed, latencyMilliseconds: latency), now: now)

        case .timerFired(.restartDelay(let id, let gen)):
            guard let u = units[id], u.generation == gen else { return [] }
            if u.stopInFlight { units[id]!.restartDelayDue = true; return [] }
            return drive(id, .restartDelayElapsed, now: now)

        case .timerFired(.deadline(let id, let gen)):
            // A later re-arm moves the deadline; the earlier timer then finds it in the future and does nothing.
            guard let u = units[id], u.generation == gen, let d = u.deadline, now.nanoseconds &+ 1_000_000 >= d.nanoseconds,
                  u.supervisor.state == .starting || u.supervisor.state == .reloading else { return [] }
            units[id]!.deadline = nil
            return drive(id, .startDeadlinePassed, now: now)

        case .jobFinished(let id, let gen, let result):
            guard let j = jobs[id], j.generation == gen, j.state == .running else { return [] }
            let ms = j.startedAt.map { Int(now.milliseconds(since: $0)) } ?? 0
            switch result {
            case .succeeded(let steps):
                jobs[id]!.state = .succeeded
                var out = steps.map { StackAction.notify(.step(id.rawValue, $0)) }
                out.append(.notify(.step(id.rawValue, "ready in \(ms) ms")))
                return out + reconcile(now: now)
            case .failed(let why):
                jobs[id]!.state = .failed(why)
                return [.notify(.step(id.rawValue, "failed: \(why)"))]
            }
        }
    }

    // MARK: commands

    private mutating func command(_ c: StackCommand, now: Instant) -> [StackAction] {
        switch c {
        case .up(let ids):
            var all = Set(ids)
            for id in ids { all.formUnion(graph.dependencies(of: id)) }
            var out: [StackAction] = []
            for id in graph.ids where all.contains(id) {
                if let j = jobs[id], case .failed = j.state { jobs[id]!.state = .pending }
                guard let u = units[id] else { continue }
                if u.supervisor.state == .failed {
                    // A service that gave up gets a fresh start (its process may still run, e.g. after a fatal probe).
                    out += requestStop(id, restartAfter: false, now: now)
                } else if u.restartAfterStop == nil {
                    units[id]!.wanted = true
                }
            }
            return out + issueStops() + reconcile(now: now)

        case .stop(let ids):
            var out: [StackAction] = []
            for id in graph.stopOrder where ids.contains(id) && units[id] != nil {
                out += requestStop(id, restartAfter: nil, now: now)
            }
            return out + issueStops()

        case .restart(let ids, let afterFileChange):
            var out: [StackAction] = []
            for id in graph.stopOrder where ids.contains(id) && units[id] != nil {
                out += requestStop(id, restartAfter: afterFileChange, now: now)
            }
            return out + issueStops() + reconcile(now: now)

        case .reloadTriggered(let id, let file, let changedAt, let marker):
            return reloadTriggered(id, file: file, changedAt: changedAt, marker: marker, now: now)

        case .restartForReload(let id, let file, let action, let changedAt):
            guard units[id] != nil else { return [] }
            beginReload(id, file: file, action: action, changedAt: changedAt, continuing: false, now: now)
            return command(.restart([id], afterFileChange: true), now: now)

        case .installFinished(let id, let file, let changedAt, let failure):
            if let failure { return command(.reloadFailed(id, file: file, action: "install", reason: failure), now: now) }
            return command(.restartForReload(id, file: file, action: "install+restart", changedAt: changedAt), now: now)

        case .buildReported(let id, let error, let errors):
            guard units[id] != nil else { return [] }
            if let error {
                units[id]!.buildError = BuildError(message: error, errors: errors, at: now.wallSeconds)
                return [.notify(.step("build", "\(id.rawValue): \(error)\(errors > 1 ? " (and \(errors - 1) more)" : "")"))]
            }
            guard units[id]!.buildError != nil else { return [] }
            units[id]!.buildError = nil
            return [.notify(.step("build", "\(id.rawValue): the build succeeded again"))]

        case .reloadFailed(let id, let file, let action, let reason):
            let count = (units[id]?.reload?.count ?? 0) + 1
            if units[id] != nil {
                units[id]!.reload = ReloadRecord(file: file, at: now.wallSeconds, action: action, healthyMilliseconds: nil,
                                                 outcome: "failed: \(reason)", count: count)
            }
            return [.notify(.step("reload", "\(id.rawValue): \(reason)"))]

        case .rerunJob(let id, let reason):
            guard let j = jobs[id], j.state != .running else { return [] }
            jobs[id]!.state = .pending
            var out: [StackAction] = [.notify(.step(id.rawValue, reason))]
            if dependenciesMet(id) { out += runJob(id, now: now) }
            return out

        case .replaceConfig(let c):
            config = c
            addMissingUnits()
            return []
        }
    }

    /// Marks a service to be stopped (and, with `restartAfter`, started afresh once it is down).
    private mutating func requestStop(_ id: ServiceID, restartAfter: Bool?, now: Instant) -> [StackAction] {
        var u = units[id]!
        u.wanted = false
        u.restartAfterStop = restartAfter
        u.generation += 1  // no more probes or timers for what runs now
        u.deadline = nil
        u.restartDelayDue = false
        if u.supervisor.state == .stopped && !u.stopInFlight && !u.spawnInFlight {
            units[id] = u
            if let afterFileChange = restartAfter { startAfresh(id, afterFileChange: afterFileChange) }
            return []
        }
        if u.stopInFlight { u.commandedStop = true } else { u.stopPending = true }
        let before = u.supervisor.state
        _ = u.supervisor.handle(.stopRequested, now: now.wallSeconds)
        units[id] = u
        return before == .stopping ? [] : [.notify(.changed(id, .stopping, reason: "stop requested", elapsedMilliseconds: 0))]
    }

    /// Hands pending stops to the runtime, dependents first: a service waits while something that depends on it
    /// is still being stopped or started.
    private mutating func issueStops() -> [StackAction] {
        var out: [StackAction] = []
        for id in graph.stopOrder {
            guard let u = units[id], u.stopPending, !u.spawnInFlight else { continue }
            let blocked = graph.dependents(of: id).contains { d in
                guard let du = units[d] else { return false }
                return du.stopPending || (du.stopInFlight && du.commandedStop)
            }
            if blocked { continue }
            units[id]!.stopPending = false
            units[id]!.stopInFlight = true
            units[id]!.commandedStop = true
            out.append(.stop(id))
        }
        return out
    }

    private mutating func stopFinished(_ id: ServiceID, failure: String?, now: Instant) -> [StackAction] {
        guard units[id] != nil else { return [] }
        var out: [StackAction] = []
        if let failure { out.append(.log(id.rawValue, "sagedev: stop failed: \(failure)")) }
        units[id]!.stopInFlight = false
        units[id]!.running = nil
        let u = units[id]!
        guard u.commandedStop || u.stopPending else {
            // The supervisor's own stop (a failed liveness or start): the backoff restart may go ahead.
            if u.restartDelayDue {
                units[id]!.restartDelayDue = false
                out += drive(id, .restartDelayElapsed, now: now)
            }
            return out
        }
        units[id]!.commandedStop = false
        units[id]!.stopPending = false
        _ = units[id]!.supervisor.handle(.stopped, now: now.wallSeconds)
        if units[id]!.supervisor.state != .stopped { units[id]!.supervisor = fresh(id) }
        out.append(.notify(.changed(id, .stopped, reason: "stopped", elapsedMilliseconds: 0)))
        if let afterFileChange = u.restartAfterStop { startAfresh(id, afterFileChange: afterFileChange) }
        return out + issueStops() + reconcile(now: now)
    }

    /// A new supervisor (a `failed` service gets a new chance), wanted again; `reconcile` starts it.
    private mutating func startAfresh(_ id: ServiceID, afterFileChange: Bool) {
        units[id]!.restartAfterStop = nil
        units[id]!.supervisor = fresh(id)
        if afterFileChange { units[id]!.supervisor.noteReload() }
        units[id]!.wanted = true
    }

    // MARK: starting what can start

    private func dependenciesMet(_ id: ServiceID) -> Bool {
        guard let spec = graph[id] else { return false }
        return spec.dependsOn.allSatisfy { d in
            if let j = jobs[d.id] { return j.state == .succeeded }
            return units[d.id]?.supervisor.state == .healthy
        }
    }

    /// A job runs when something wanted needs it.
    private func jobWanted(_ id: ServiceID) -> Bool {
        graph.dependents(of: id).contains { units[$0]?.wanted == true }
    }

    /// Starts every wanted service whose dependencies meet their conditions, and every job something wanted needs.
    private mutating func reconcile(now: Instant) -> [StackAction] {
        var out: [StackAction] = []
        for spec in graph.specs {
            let id = spec.id
            if let j = jobs[id] {
                if j.state == .pending && jobWanted(id) && dependenciesMet(id) { out += runJob(id, now: now) }
                continue
            }
            guard let u = units[id], u.wanted, u.supervisor.state == .stopped, !u.stopInFlight, !u.spawnInFlight,
                  dependenciesMet(id) else { continue }
            let a = units[id]!.supervisor.handle(.startRequested, now: now.wallSeconds)
            out.append(.notify(.changed(id, units[id]!.supervisor.state, reason: "starting", elapsedMilliseconds: 0)))
            out += carryOut(a, for: id, now: now)
        }
        return out
    }

    private mutating func runJob(_ id: ServiceID, now: Instant) -> [StackAction] {
        guard let spec = graph[id]?.job else { return [] }
        jobs[id]!.state = .running
        jobs[id]!.generation += 1
        jobs[id]!.startedAt = now
        return [.runJob(id, generation: jobs[id]!.generation, spec)]
    }

    // MARK: the supervisors

    /// Feeds one supervisor, tells the observers about a change of state, and turns its actions into the stack's.
    private mutating func drive(_ id: ServiceID, _ event: SupervisorEvent, now: Instant) -> [StackAction] {
        let before = units[id]!.supervisor.state
        let actions = units[id]!.supervisor.handle(event, now: now.wallSeconds)
        let sup = units[id]!.supervisor
        var out: [StackAction] = []
        if sup.state == .healthy && before != .healthy {
            out += noteHealthyAfterReload(id, now: now)
            out += reprobeDependentsAfterOutage(of: id, now: now)
        }
        if sup.state == .crashed && units[id]!.reloadStartedAt != nil { units[id]!.reload?.outcome = "crashed" }
        if before != sup.state || actions.contains(where: { if case .gaveUp = $0 { return true }; return false }) {
            let elapsed = units[id]!.readinessStartedAt.map { Int(now.milliseconds(since: $0)) } ?? 0
            out.append(.notify(.changed(id, sup.state, reason: sup.reason, elapsedMilliseconds: elapsed)))
        }
        return out + carryOut(actions, for: id, now: now)
    }

    /// `id` is healthy again: each dependent that is unhealthy, and now has nothing it needs down, is probed at
    /// once instead of at its next liveness tick, so it shows healthy as soon as it is. The new generation
    /// retires the probe that was scheduled.
    private mutating func reprobeDependentsAfterOutage(of id: ServiceID, now: Instant) -> [StackAction] {
        var out: [StackAction] = []
        for d in graph.dependents(of: id) {
            // Only what depends on it directly may have failed on its outage (a frontend that depends on the
            // backend did not fail on postgres).
            if units[d] != nil, graph[d]?.dependsOn.contains(where: { $0.id == id }) == true {
                units[d]!.dependencyRecovered = DependencyRecovery(at: now, id: id)
            }
            guard let u = units[d], u.wanted, u.supervisor.state == .unhealthy, !u.stopInFlight, !u.spawnInFlight,
                  dependencyOutage(of: d).isEmpty else { continue }
            units[d]!.generation += 1
            out.append(.probe(d, generation: units[d]!.generation, afterSeconds: 0, readRestartMarker: false))
        }
        return out
    }

    private mutating func carryOut(_ actions: [SupervisorAction], for id: ServiceID, now: Instant) -> [StackAction] {
        var out: [StackAction] = []
        for a in actions {
            switch a {
            case .spawn:
                units[id]!.generation += 1
                units[id]!.readinessStartedAt = now
                units[id]!.deadline = nil
                units[id]!.spawnInFlight = true
                out.append(.spawn(id, generation: units[id]!.generation))
            case .probeReadiness:
                let u = units[id]!
                let elapsed = u.readinessStartedAt.map { now.milliseconds(since: $0) } ?? 0
                out.append(.probe(id, generation: u.generation, afterSeconds: policy.schedule.interval(afterMilliseconds: elapsed) / 1000,
                                  readRestartMarker: u.supervisor.state == .reloading && u.reloadMarker != nil, wakeOnOutput: true))
            case .scheduleLivenessProbe(let after):
                out.append(.probe(id, generation: units[id]!.generation, afterSeconds: after, readRestartMarker: false))
            case .scheduleRestart(let after):
                out.append(.scheduleTimer(.restartDelay(id, generation: units[id]!.generation), afterSeconds: after))
            case .stop:
                units[id]!.generation += 1
                units[id]!.deadline = nil
                if !units[id]!.stopInFlight {
                    units[id]!.stopInFlight = true
                    out.append(.stop(id))
                }
            case .becameHealthy:
                out += reconcile(now: now)
            case .gaveUp(let why):
                out.append(.log(id.rawValue, "sagedev: \(why)"))
            }
        }
        return out
    }

    private mutating func armDeadline(_ id: ServiceID, after seconds: Double, now: Instant) -> [StackAction] {
        let at = now.adding(seconds: seconds)
        if let d = units[id]!.deadline, d.nanoseconds > at.nanoseconds { return [] }
        units[id]!.deadline = at
        return [.scheduleTimer(.deadline(id, generation: units[id]!.generation), afterSeconds: seconds)]
    }

    // MARK: hot reload

    private mutating func beginReload(_ id: ServiceID, file: String, action: String, changedAt: UInt64, continuing: Bool, now: Instant) {
        let count = (units[id]!.reload?.count ?? 0) + (continuing ? 0 : 1)
        units[id]!.reload = ReloadRecord(file: file, at: now.wallSeconds(at: changedAt), action: action,
                                         healthyMilliseconds: nil, outcome: "reloading", count: count)
        units[id]!.reloadStartedAt = changedAt
    }

    /// A source file of a self-reloading service changed: the dev server restarts itself; the probe confirms it.
    private mutating func reloadTriggered(_ id: ServiceID, file: String, changedAt: UInt64, marker: String?, now: Instant) -> [StackAction] {
        guard let u = units[id], u.wanted else { return [] }
        let alive = u.running != nil
        beginReload(id, file: file, action: "self", changedAt: changedAt, continuing: false, now: now)
        units[id]!.readinessStartedAt = now
        units[id]!.reloadOutageSeen = false
        // The marker is read after the change: a restart the dev server already began still shows up as a change
        // later, because its new app process has a new pid.
        units[id]!.reloadMarker = alive ? marker : nil
        let before = u.supervisor.state
        let actions = units[id]!.supervisor.handle(.reloadTriggered(file, processAlive: alive), now: now.wallSeconds)
        var out: [StackAction] = []
        let state = units[id]!.supervisor.state
        if state == .reloading {
            // This probe chain replaces the one that ran (liveness or an earlier reload).
            units[id]!.generation += 1
            units[id]!.deadline = nil
            out += armDeadline(id, after: reloadTimeout(id), now: now)
        } else if actions.isEmpty && (state == .starting || state == .restarting) {
            // Still starting: its readiness probes and its deadline keep going (the new code is what it serves
            // once ready). A start that follows a change gets the reload timeout again from this save.
            if units[id]!.supervisor.reloadPending { out += armDeadline(id, after: reloadTimeout(id), now: now) }
        }
        if before != state {
            out.append(.notify(.changed(id, state, reason: units[id]!.supervisor.reason, elapsedMilliseconds: 0)))
        }
        return out + carryOut(actions, for: id, now: now)
    }

    /// In `reloading`, a ready answer from the old process is not a reload: wait until the restart marker moves
    /// (or, where the runtime cannot tell, until an outage was seen), or until the settle time says no restart
    /// came; then restart the service. nil: the answer was consumed (the restart takes over).
    private mutating func confirmReload(_ id: ServiceID, _ outcome: ProbeOutcome, marker: String?, now: Instant,
                                        _ out: inout [StackAction]) -> ProbeOutcome? {
        let u = units[id]!
        guard u.supervisor.state == .reloading, let started = u.reloadStartedAt else { return outcome }
        guard case .ready(let why) = outcome else { units[id]!.reloadOutageSeen = true; return outcome }
        let restarted = u.reloadMarker != nil ? marker != u.reloadMarker : u.reloadOutageSeen
        if restarted { return .ready(why) }
        let rule = devServerRule(id)
        // A dev server that reloads in place (esbuild, Vite) is done once it answers: there is no restart to wait for.
        if rule?.reloadsInPlace == true { return .ready(why) }
        if let b = u.buildError, b.at >= u.reload?.at ?? 0 {
            // The compiler refused the change: nothing will restart, and the last good build still answers.
            units[id]!.reload?.outcome = "build failed: \(b.message)"
            return .ready(why)
        }
        let settle = rule?.reloadSettleSeconds ?? policy.reloadSettleSeconds
        if now.seconds(since: started) >= settle {
            let file = u.reload?.file ?? "a file"
            out.append(.log(id.rawValue, "sagedev: the dev server did not reload within \(Int(settle * 1000)) ms of the change; restarting it"))
            beginReload(id, file: file, action: "restart (the dev server missed the change)", changedAt: started, continuing: true, now: now)
            out += command(.restart([id], afterFileChange: true), now: now)
            return nil
        }
        return .notReady("waiting for the dev server to restart")
    }

    /// The app's dev server rule, as the configuration resolved it (`Config` reads package.json for `auto`).
    private func devServerRule(_ id: ServiceID) -> DevServerRule? { config.app(id)?.devServer?.rule }

    /// A dev server with a compile step (tsc) gets its settle time on top of the reload timeout.
    private func reloadTimeout(_ id: ServiceID) -> Double {
        policy.reloadTimeoutSeconds + (devServerRule(id)?.reloadSettleSeconds ?? 0)
    }

    private mutating func noteHealthyAfterReload(_ id: ServiceID, now: Instant) -> [StackAction] {
        guard let started = units[id]!.reloadStartedAt, var r = units[id]!.reload else { return [] }
        let ms = Int(now.seconds(since: started) * 1000)
        r.healthyMilliseconds = ms
        if r.outcome == "reloading" { r.outcome = "reloaded" }
        units[id]!.reload = r
        units[id]!.reloadStartedAt = nil
        return [.notify(.step("reload", "\(id.rawValue) \(r.outcome) in \(ms) ms after a change to \(r.file)"))]
    }
}
