import SageSystem

/// The states a supervised service moves through. `status` shows them as they are named here.
public enum ServiceState: String, Sendable, Codable, Equatable {
    case stopped, starting, healthy, unhealthy, reloading, restarting, crashed, failed, stopping
}

/// Restart timing: 0.5 s doubling to 30 s; given up after 10 consecutive failures; the count resets after 60 s healthy.
public struct BackoffPolicy: Sendable, Equatable {
    public var initialSeconds = 0.5
    public var maximumSeconds = 30.0
    public var maximumConsecutiveFailures = 10
    public var resetAfterHealthySeconds = 60.0
    public init() {}

    /// The wait before restart number `failures` (1-based).
    public func delay(afterFailures failures: Int) -> Double {
        min(maximumSeconds, initialSeconds * Double(1 << min(max(failures - 1, 0), 20)))
    }
}

/// Liveness while healthy: a probe about every 2 s; this many consecutive failures make the service unhealthy.
public struct LivenessPolicy: Sendable, Equatable {
    public var intervalSeconds = 2.0
    public var failureThreshold = 3
    /// How long a start may take to become ready before it counts as a failed start.
    public var startTimeoutSeconds = 90.0
    public init() {}
}

/// One state change, kept for `status`.
public struct Transition: Sendable, Equatable {
    public var from: ServiceState
    public var to: ServiceState
    public var reason: String
    public var at: Double  // wall clock seconds
}

/// What happened to a service (past tense).
public enum SupervisorEvent: Sendable, Equatable {
    case startRequested
    case started(pid: Int32?)
    case startFailed(String)
    case probed(ProbeOutcome, latencyMilliseconds: Double)
    case exited(ExitStatus)
    case restartDelayElapsed
    case startDeadlinePassed
    case stopRequested
    case stopped
    /// A file change asked the service to reload. `processAlive`: its process still runs (a self-reloading dev
    /// server restarts its own child), so the reload is confirmed by probing rather than by spawning.
    case reloadTriggered(String, processAlive: Bool)
    /// A liveness probe failed while services it depends on are down (`waitingOn` names them): the service is
    /// waiting on them, not broken, and restarting it would not help. It shows as unhealthy and is not restarted.
    case probedDuringDependencyOutage(ProbeOutcome, latencyMilliseconds: Double, waitingOn: String)
}

/// What the engine must do next (imperative).
public enum SupervisorAction: Sendable, Equatable {
    case spawn
    case probeReadiness
    case scheduleLivenessProbe(afterSeconds: Double)
    case scheduleRestart(afterSeconds: Double)
    case stop
    case becameHealthy
    case gaveUp(String)
}

/// The sans-IO supervisor of one service. The engine feeds it events with the current time and carries out the
/// returned actions; tests drive it directly.
public struct ServiceSupervisor: Sendable, Equatable {
    public let service: ServiceID
    public private(set) var state: ServiceState = .stopped
    public private(set) var reason = "not started"
    public private(set) var since: Double = 0
    public private(set) var restarts = 0
    public private(set) var consecutiveFailures = 0
    public private(set) var healthySince: Double?
    public private(set) var lastExit: ExitStatus?
    public private(set) var lastProbe: ProbeOutcome?
    public private(set) var lastProbeLatency: Double?
    public private(set) var livenessFailures = 0
    public private(set) var history: [Transition] = []
    /// A start that follows a file change is never given up on: the next save retries at once.
    public private(set) var reloadPending = false
    public let backoff: BackoffPolicy
    public let liveness: LivenessPolicy

    public init(service: ServiceID, backoff: BackoffPolicy = BackoffPolicy(), liveness: LivenessPolicy = LivenessPolicy()) {
        self.service = service; self.backoff = backoff; self.liveness = liveness
    }

    /// Takes over a process a previous daemon started (after that daemon died): treat it as starting, then probe.
    public mutating func adopted(pid: Int32?, now: Double) -> [SupervisorAction] {
        move(to: .starting, "adopted running process\(pid.map { " (pid \($0))" } ?? "") from a previous daemon", now)
        return [.probeReadiness]
    }

    public mutating func handle(_ event: SupervisorEvent, now: Double) -> [SupervisorAction] {
        switch (state, event) {
        case (.stopped, .startRequested), (.failed, .startRequested), (.crashed, .startRequested):
            consecutiveFailures = state == .failed ? 0 : consecutiveFailures
            move(to: .starting, "start requested", now)
            return [.spawn]
        case (_, .startRequested):
            return []

        case (.starting, .started(let pid)), (.restarting, .started(let pid)):
            move(to: .starting, pid.map { "process \($0) started; waiting for readiness" } ?? "started; waiting for readiness", now)
            return [.probeReadiness]
        case (_, .started):
            return []

        case (.starting, .startFailed(let why)), (.restarting, .startFailed(let why)):
            return failure(why, now: now, fatal: false)
        case (_, .startFailed):
            return []

        case (.starting, .probed(let outcome, let latency)), (.reloading, .probed(let outcome, let latency)):
            lastProbe = outcome; lastProbeLatency = latency
            switch outcome {
            case .ready(let why):
                let wasReload = state == .reloading
                move(to: .healthy, wasReload ? "reloaded: \(why)" : why, now)
                healthySince = now; livenessFailures = 0; reloadPending = false
                return [.becameHealthy, .scheduleLivenessProbe(afterSeconds: liveness.intervalSeconds)]
            case .notReady:
                return [.probeReadiness]
            case .fatal(let why):
                return failure(why, now: now, fatal: true)
            }
        case (.healthy, .probed(let outcome, let latency)), (.unhealthy, .probed(let outcome, let latency)):
            lastProbe = outcome; lastProbeLatency = latency
            if case .ready = outcome {
                livenessFailures = 0
                if state == .unhealthy { move(to: .healthy, "liveness probe passed again", now) }
                if let h = healthySince, now - h >= backoff.resetAfterHealthySeconds { consecutiveFailures = 0 }
                return [.scheduleLivenessProbe(afterSeconds: liveness.intervalSeconds)]
            }
            livenessFailures += 1
            if livenessFailures >= liveness.failureThreshold || outcome.isFatal {
                move(to: .unhealthy, "liveness failed \(livenessFailures)× : \(outcome.reason)", now)
                return [.stop] + failure("liveness failed: \(outcome.reason)", now: now, fatal: false, moveState: false)
            }
            if state == .healthy { move(to: .unhealthy, "liveness probe failed (\(livenessFailures)/\(liveness.failureThreshold)): \(outcome.reason)", now) }
            return [.scheduleLivenessProbe(afterSeconds: liveness.intervalSeconds)]
        case (_, .probed):
            return []

        case (.healthy, .probedDuringDependencyOutage(let outcome, let latency, let waitingOn)),
             (.unhealthy, .probedDuringDependencyOutage(let outcome, let latency, let waitingOn)):
            lastProbe = outcome; lastProbeLatency = latency
            livenessFailures = 0
            move(to: .unhealthy, "waiting on \(waitingOn) (not restarted while it is down): \(outcome.reason)", now)
            return [.scheduleLivenessProbe(afterSeconds: liveness.intervalSeconds)]
        case (_, .probedDuringDependencyOutage(let outcome, let latency, _)):
            return handle(.probed(outcome, latencyMilliseconds: latency), now: now)

        case (.starting, .startDeadlinePassed) where reloadPending:
            // Started after a file change and never ready: the change broke it. Keep the process (a watching dev
            // server picks up the next save itself) and wait for the next save instead of looping.
            move(to: .crashed, "not ready after the change (\(lastProbe?.reason ?? "no answer")); fix the code and save to retry", now)
            return []
        case (.starting, .startDeadlinePassed):
            return [.stop] + failure("not ready after \(Int(liveness.startTimeoutSeconds)) s: \(lastProbe?.reason ?? "no probe answered")", now: now, fatal: false)
        case (.reloading, .startDeadlinePassed):
            // The dev server did not come back after a change: most likely the change broke it. The next save retries.
            move(to: .crashed, "did not come back after the change (\(lastProbe?.reason ?? "no answer")); fix the code and save to retry", now)
            return []
        case (_, .startDeadlinePassed):
            return []

        case (.stopping, .exited(let status)), (.stopped, .exited(let status)):
            lastExit = status
            return []
        case (.failed, .exited(let status)), (.crashed, .exited(let status)), (.restarting, .exited(let status)):
            lastExit = status
            return []
        case (_, .exited(let status)):
            lastExit = status
            if reloadPending || state == .reloading {
                // A save that broke the app: wait for the next save rather than loop on the broken code.
                move(to: .crashed, "exited with \(status) after a file change; fix the code and save to retry", now)
                return []
            }
            return failure("exited with \(status)", now: now, fatal: false)

        case (.restarting, .restartDelayElapsed), (.crashed, .restartDelayElapsed):
            move(to: .restarting, "restarting (attempt \(consecutiveFailures))", now)
            restarts += 1
            return [.spawn]
        case (_, .restartDelayElapsed):
            return []

        case (.stopped, .stopRequested):
            return []
        case (_, .stopRequested):
            move(to: .stopping, "stop requested", now)
            return [.stop]
        case (_, .stopped):
            if state == .stopping { move(to: .stopped, "stopped", now) }
            return []

        case (.healthy, .reloadTriggered(let file, _)), (.unhealthy, .reloadTriggered(let file, _)),
             (.reloading, .reloadTriggered(let file, _)):
            reloadPending = true
            move(to: .reloading, "reloading after a change to \(file)", now)
            return [.probeReadiness]
        case (.crashed, .reloadTriggered(let file, let alive)), (.failed, .reloadTriggered(let file, let alive)):
            // Reload-triggered crashes are never given up on: the next save retries at once.
            reloadPending = true; consecutiveFailures = 0
            if alive {
                move(to: .reloading, "retrying after a change to \(file)", now)
                return [.probeReadiness]
            }
            move(to: .restarting, "retrying after a change to \(file)", now)
            restarts += 1
            return [.spawn]
        case (_, .reloadTriggered):
            return []
        }
    }

    /// Marks that the next readiness after a restart comes from a reload (restart-mode reloads).
    public mutating func noteReload() { reloadPending = true }

    private mutating func failure(_ why: String, now: Double, fatal: Bool, moveState: Bool = true) -> [SupervisorAction] {
        if let h = healthySince, now - h >= backoff.resetAfterHealthySeconds { consecutiveFailures = 0 }
        healthySince = nil
        consecutiveFailures += 1
        if fatal {
            move(to: .failed, why, now)
            return [.gaveUp(why)]
        }
        if consecutiveFailures >= backoff.maximumConsecutiveFailures {
            let msg = "\(why); gave up after \(consecutiveFailures) consecutive failures (run 'sagedev restart \(service.rawValue)' after fixing it)"
            move(to: .failed, msg, now)
            return [.gaveUp(msg)]
        }
        let delay = backoff.delay(afterFailures: consecutiveFailures)
        if moveState || state != .crashed {
            move(to: .crashed, "\(why); restarting in \(formatSeconds(delay))", now)
        }
        return [.scheduleRestart(afterSeconds: delay)]
    }

    private mutating func move(to next: ServiceState, _ why: String, _ now: Double) {
        history.append(Transition(from: state, to: next, reason: why, at: now))
        if history.count > 50 { history.removeFirst(history.count - 50) }
        state = next; reason = why; since = now
    }
}

func formatSeconds(_ s: Double) -> String {
    s < 10 ? "\((s * 10).rounded() / 10) s" : "\(Int(s.rounded())) s"
}
