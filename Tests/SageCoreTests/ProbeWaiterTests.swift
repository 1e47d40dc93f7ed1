import Dispatch
import Testing
import SageSystem
@testable import SageCore

/// A probe that answers from a script of outcomes (the last one repeats), counting its checks.
private final class ScriptedProbe: Probe, @unchecked Sendable {
    let target: String
    private let script: [ProbeOutcome]
    private let calls = Locked(0)
    private let before: (@Sendable (Int) -> Void)?

    init(_ target: String, _ script: [ProbeOutcome], before: (@Sendable (Int) -> Void)? = nil) {
        self.target = target; self.script = script; self.before = before
    }

    var checks: Int { calls.current }

    func check(deadline: Deadline) -> ProbeOutcome {
        let n = calls.withValue { c -> Int in c += 1; return c }
        before?(n)
        return script[min(n - 1, script.count - 1)]
    }
}

@Suite struct ProbeWaiterTests {
    @Test func readyAfterSomeAttemptsWithPausesBetween() {
        let probe = ScriptedProbe("a", Array(repeating: .notReady("refused"), count: 4) + [.ready("PONG")])
        let settled = Locked<[ProbeReport]>([])
        let started = monotonicNanoseconds()
        let result = ProbeWaiter(schedule: ProbeSchedule(initialIntervalMilliseconds: 10)).wait(for: [probe], deadline: .after(seconds: 10)) { r in settled.withValue { $0.append(r) } }
        let took = millisecondsSince(started)
        #expect(result.allReady && !result.timedOut && result.fatal == nil)
        #expect(result.reports[0].attempts == 5)
        #expect(result.reports[0].outcome == .ready("PONG"))
        // Four pauses of ~10 ms: not a busy loop, and not slow either.
        #expect(took >= 38 && took < 1000, "took \(took) ms")
        #expect(result.reports[0].elapsedMilliseconds >= 38)
        #expect(settled.current.map(\.index) == [0])
    }

    @Test func aFatalOutcomeEndsTheWholeWaitAtOnce() {
        let slow = ScriptedProbe("slow", [.notReady("starting")])
        let bad = ScriptedProbe("bad", [.notReady("refused"), .notReady("refused"), .fatal("wrong password: check VALKEY_PASSWORD in .env")])
        let started = monotonicNanoseconds()
        let result = ProbeWaiter().wait(for: [slow, bad], deadline: .after(seconds: 30))
        let took = millisecondsSince(started)
        #expect(took < 2000, "a fatal outcome took \(took) ms to end the wait")
        #expect(result.fatal?.index == 1)
        #expect(result.fatal?.outcome.isFatal == true)
        #expect(!result.timedOut && !result.allReady)
        #expect(result.unready.map(\.index) == [0, 1])
        #expect(result.reports[0].outcome == .notReady("starting"))
    }

    @Test func timeoutReportsTheLastReasonWithoutSpinning() {
        let probe = ScriptedProbe("never", [.notReady("connection refused")])
        let started = monotonicNanoseconds()
        let result = ProbeWaiter(schedule: ProbeSchedule(initialIntervalMilliseconds: 10)).wait(for: [probe], deadline: .after(milliseconds: 300))
        let took = millisecondsSince(started)
        #expect(result.timedOut)
        #expect(took >= 295 && took < 1500, "took \(took) ms")
        #expect(result.reports[0].outcome == .notReady("connection refused"))
        // ~10 ms pauses over 300 ms: about 30 checks, far from a busy loop's thousands.
        #expect(probe.checks >= 10 && probe.checks <= 40, "\(probe.checks) checks")
    }

    @Test func targetsAreCheckedConcurrently() {
        // Each probe is ready only once all three have started a check: a sequential waiter would stall.
        let started = Locked<Set<String>>([])
        let allStarted = DispatchSemaphore(value: 0)
        func probe(_ name: String) -> ScriptedProbe {
            ScriptedProbe(name, [.ready("ok")]) { _ in
                let count = started.withValue { s -> Int in s.insert(name); return s.count }
                if count == 3 { for _ in 0..<3 { allStarted.signal() } }
                _ = allStarted.wait(timeout: .now() + .seconds(5))
            }
        }
        let probes = [probe("a"), probe("b"), probe("c")]
        let t0 = monotonicNanoseconds()
        let result = ProbeWaiter().wait(for: probes, deadline: .after(seconds: 10))
        #expect(result.allReady)
        #expect(millisecondsSince(t0) < 2000)
    }

    @Test func onSettledIsCalledOncePerTargetInReadyOrder() {
        let fast = ScriptedProbe("fast", [.ready("ok")])
        let later = ScriptedProbe("later", [.notReady("x"), .notReady("x"), .ready("ok")])
        let order = Locked<[String]>([])
        let result = ProbeWaiter().wait(for: [later, fast], deadline: .after(seconds: 10)) { r in
            order.withValue { $0.append(r.target) }
        }
        #expect(result.allReady)
        #expect(order.current == ["fast", "later"])
        #expect(result.reports.map(\.target) == ["later", "fast"])
    }

    @Test func attemptDeadlineIsBoundedByTheAttemptTimeout() {
        let seen = Locked<[Int32]>([])
        final class DeadlineProbe: Probe, @unchecked Sendable {
            let target = "d"
            let seen: Locked<[Int32]>
            init(_ seen: Locked<[Int32]>) { self.seen = seen }
            func check(deadline: Deadline) -> ProbeOutcome {
                seen.withValue { $0.append(deadline.remainingMilliseconds) }
                return .ready("ok")
            }
        }
        _ = ProbeWaiter(attemptTimeoutMilliseconds: 150).wait(for: [DeadlineProbe(seen)], deadline: .after(seconds: 60))
        #expect(seen.current.count == 1)
        #expect((seen.current.first ?? 0) <= 150)
    }

    @Test func noProbesIsImmediatelyReady() {
        let result = ProbeWaiter().wait(for: [], deadline: .after(seconds: 1))
        #expect(result.allReady && !result.timedOut && result.reports.isEmpty)
    }
}
