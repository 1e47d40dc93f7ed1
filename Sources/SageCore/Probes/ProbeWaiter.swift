import Dispatch
import SageSystem

/// Where one target stands in a wait.
public struct ProbeReport: Sendable, Equatable {
    /// The target's position in the list given to the waiter.
    public var index: Int
    /// What is probed, password redacted.
    public var target: String
    /// The last outcome (`.notReady("not checked yet")` before the first check ends).
    public var outcome: ProbeOutcome
    /// When that outcome was seen, in ms since the wait began.
    public var elapsedMilliseconds: Double
    public var attempts: Int

    public init(index: Int, target: String, outcome: ProbeOutcome, elapsedMilliseconds: Double, attempts: Int) {
        self.index = index; self.target = target; self.outcome = outcome
        self.elapsedMilliseconds = elapsedMilliseconds; self.attempts = attempts
    }
}

public struct ProbeWaitResult: Sendable, Equatable {
    /// One report per probe, in the order the probes were given.
    public var reports: [ProbeReport]
    /// The fatal outcome that ended the wait, if one did.
    public var fatal: ProbeReport?
    /// The deadline passed before every target was ready.
    public var timedOut: Bool

    public var allReady: Bool { reports.allSatisfy { $0.outcome.isReady } }
    public var unready: [ProbeReport] { reports.filter { !$0.outcome.isReady } }
}

/// Waits for many probes at once, one thread per target, re-checking each on the `ProbeSchedule`
/// until it is ready, one is fatal, or the deadline passes. Sleeps between checks; never spins.
public struct ProbeWaiter: Sendable {
    public var schedule: ProbeSchedule
    /// The longest a single check may take (a server that accepts but never answers).
    public var attemptTimeoutMilliseconds: Int

    public init(schedule: ProbeSchedule = ProbeSchedule(), attemptTimeoutMilliseconds: Int = 2000) {
        self.schedule = schedule; self.attemptTimeoutMilliseconds = max(1, attemptTimeoutMilliseconds)
    }

    /// Blocks until all probes are ready, one is fatal (at once, without waiting for checks still
    /// running elsewhere) or the deadline passes. `onSettled` is called once per target that becomes
    /// ready or fatal, as it happens, never after the wait has ended; calls are serialised.
    public func wait(for probes: [any Probe], deadline: Deadline,
                     onSettled: @escaping @Sendable (ProbeReport) -> Void = { _ in }) -> ProbeWaitResult {
        let state = WaitState(targets: probes.map(\.target), onSettled: onSettled)
        if probes.isEmpty { return state.result(timedOut: false) }
        let start = monotonicNanoseconds()
        for (index, probe) in probes.enumerated() {
            let schedule = self.schedule, attemptTimeout = self.attemptTimeoutMilliseconds
            DispatchQueue(label: "sagedev.probe.\(index)").async {
                Self.run(probe, index: index, state: state, schedule: schedule, attemptTimeout: attemptTimeout,
                         start: start, deadline: deadline)
            }
        }
        let finishedInTime = state.done.wait(timeout: Self.dispatchTime(deadline)) == .success
        let timedOut = state.finish(byTimeout: !finishedInTime)
        return state.result(timedOut: timedOut)
    }

    private static func run(_ probe: any Probe, index: Int, state: WaitState, schedule: ProbeSchedule,
                            attemptTimeout: Int, start: UInt64, deadline: Deadline) {
        let wake = state.wakers[index]
        while !state.isFinished && !deadline.hasPassed {
            let outcome = probe.check(deadline: deadline.earlier(.after(milliseconds: attemptTimeout)))
            let elapsed = millisecondsSince(start)
            // An attempt the overall deadline cut short says only that time ran out: the last real answer stands.
            guard state.record(index: index, outcome: outcome, elapsed: elapsed, cutShort: deadline.hasPassed) else { return }
            let pause = Deadline.after(milliseconds: Int(schedule.interval(afterMilliseconds: elapsed).rounded(.up)))
            _ = wake.wait(timeout: dispatchTime(pause.earlier(deadline)))
        }
    }

    private static func dispatchTime(_ deadline: Deadline) -> DispatchTime {
        let now = monotonicNanoseconds()
        let remaining = deadline.nanoseconds > now ? deadline.nanoseconds - now : 0
        return .now() + .nanoseconds(Int(min(remaining, UInt64(Int.max / 2))))
    }
}

/// What the probe threads share with the waiting thread.
private final class WaitState: @unchecked Sendable {
    let lock = Lock()
    let done = DispatchSemaphore(value: 0)
    let wakers: [DispatchSemaphore]
    let onSettled: @Sendable (ProbeReport) -> Void
    private var reports: [ProbeReport]
    private var unsettled: Int
    private var finished = false
    private var fatal: ProbeReport?

    init(targets: [String], onSettled: @escaping @Sendable (ProbeReport) -> Void) {
        reports = targets.enumerated().map {
            ProbeReport(index: $0.offset, target: $0.element, outcome: .notReady("not checked yet"), elapsedMilliseconds: 0, attempts: 0)
        }
        unsettled = targets.count
        wakers = targets.map { _ in DispatchSemaphore(value: 0) }
        self.onSettled = onSettled
    }

    var isFinished: Bool { lock.locked { finished } }

    /// Records one outcome; returns whether the target should be checked again.
    func record(index: Int, outcome: ProbeOutcome, elapsed: Double, cutShort: Bool = false) -> Bool {
        lock.locked {
            if finished { return false }
            if cutShort, case .notReady = outcome, reports[index].attempts > 0 {
                reports[index].attempts += 1
                return false
            }
            reports[index].outcome = outcome
            reports[index].elapsedMilliseconds = elapsed
            reports[index].attempts += 1
            switch outcome {
            case .notReady:
                return true
            case .ready:
                unsettled -= 1
                onSettled(reports[index])
                if unsettled == 0 { finishLocked() }
                return false
            case .fatal:
                fatal = reports[index]
                onSettled(reports[index])
                finishLocked()
                return false
            }
        }
    }

    private func finishLocked() {
        finished = true
        done.signal()
        for w in wakers { w.signal() }
    }

    /// Ends the wait; returns whether it ended by timing out (false when a probe thread ended it first).
    func finish(byTimeout: Bool) -> Bool {
        lock.locked {
            if finished { return false }
            finishLocked()
            return byTimeout
        }
    }

    func result(timedOut: Bool) -> ProbeWaitResult {
        lock.locked { ProbeWaitResult(reports: reports, fatal: fatal, timedOut: timedOut) }
    }
}
