import Testing
import Glibc
import SageSystem
@testable import SageCore

@Suite struct ServiceSupervisorTests {
    @Test func startProbeHealthy() {
        var s = ServiceSupervisor(service: .postgres)
        #expect(s.handle(.startRequested, now: 0) == [.spawn])
        #expect(s.handle(.started(pid: 42), now: 0.1) == [.probeReadiness])
        #expect(s.handle(.probed(.notReady("refused"), latencyMilliseconds: 1), now: 0.2) == [.probeReadiness])
        #expect(s.handle(.probed(.ready("SELECT 1 ok"), latencyMilliseconds: 2), now: 0.3) == [.becameHealthy, .scheduleLivenessProbe(afterSeconds: 2)])
        #expect(s.state == .healthy)
        #expect(s.history.map(\.to) == [.starting, .starting, .healthy])
    }

    @Test func backoffDoublesToThirtySeconds() {
        let b = BackoffPolicy()
        #expect((1...8).map { b.delay(afterFailures: $0) } == [0.5, 1, 2, 4, 8, 16, 30, 30])
    }

    @Test func crashRestartsWithBackoffAndGivesUpAfterTen() {
        var s = ServiceSupervisor(service: .backend)
        _ = s.handle(.startRequested, now: 0)
        var delays: [Double] = []
        var t = 1.0
        for _ in 1...9 {
            _ = s.handle(.started(pid: 1), now: t)
            let a = s.handle(.exited(.exited(1)), now: t + 0.1)
            guard case .scheduleRestart(let d) = a.first else { Issue.record("expected a restart, got \(a)"); return }
            delays.append(d)
            #expect(s.state == .crashed)
            #expect(s.handle(.restartDelayElapsed, now: t + d) == [.spawn])
            t += d + 1
        }
        #expect(delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30])
        _ = s.handle(.started(pid: 1), now: t)
        let last = s.handle(.exited(.signalled(9)), now: t + 0.1)
        #expect(s.state == .failed)
        guard case .gaveUp(let why) = last.first else { Issue.record("expected gaveUp"); return }
        #expect(why.contains("10 consecutive failures"))
        #expect(s.restarts == 9)
    }

    @Test func backoffResetsAfterSixtySecondsHealthy() {
        var s = ServiceSupervisor(service: .valkey)
        _ = s.handle(.startRequested, now: 0)
        _ = s.handle(.started(pid: 1), now: 0)
        _ = s.handle(.exited(.exited(1)), now: 1)        // failure 1
        _ = s.handle(.restartDelayElapsed, now: 2)
        _ = s.handle(.started(pid: 2), now: 2)
        _ = s.handle(.probed(.ready("PONG"), latencyMilliseconds: 1), now: 3)
        let a = s.handle(.exited(.exited(1)), now: 100)  // healthy for 97 s: the count starts over
        #expect(a == [.scheduleRestart(afterSeconds: 0.5)])
        #expect(s.consecutiveFailures == 1)
    }

    @Test func fatalProbeStopsRetryingAtOnce() {
        var s = ServiceSupervisor(service: .postgres)
        _ = s.handle(.startRequested, now: 0)
        _ = s.handle(.started(pid: 1), now: 0)
        let a = s.handle(.probed(.fatal("password authentication failed for user \"sage\": check POSTGRES_PASSWORD in .env"), latencyMilliseconds: 1), now: 1)
        #expect(s.state == .failed)
        #expect(a.count == 1)
        if case .gaveUp(let why) = a[0] { #expect(why.contains("POSTGRES_PASSWORD")) } else { Issue.record("expected gaveUp") }
    }

    @Test func livenessNeedsThresholdFailures() {
        var s = ServiceSupervisor(service: .backend)
        _ = s.handle(.startRequested, now: 0)
        _ = s.handle(.started(pid: 1), now: 0)
        _ = s.handle(.probed(.ready("200"), latencyMilliseconds: 1), now: 1)
        #expect(s.handle(.probed(.notReady("503"), latencyMilliseconds: 1), now: 3) == [.scheduleLivenessProbe(afterSeconds: 2)])
        #expect(s.state == .unhealthy)
        #expect(s.handle(.probed(.ready("200"), latencyMilliseconds: 1), now: 5) == [.scheduleLivenessProbe(afterSeconds: 2)])
        #expect(s.state == .healthy)
        _ = s.handle(.probed(.notReady("503"), latencyMilliseconds: 1), now: 7)
        _ = s.handle(.probed(.notReady("503"), latencyMilliseconds: 1), now: 9)
        let a = s.handle(.probed(.notReady("503"), latencyMilliseconds: 1), now: 11)
        #expect(a == [.stop, .scheduleRestart(afterSeconds: 0.5)])
    }

    @Test func reloadCrashWaitsForNextSaveThenRetriesAtOnce() {
        var s = ServiceSupervisor(service: .backend)
        _ = s.handle(.startRequested, now: 0)
        _ = s.handle(.started(pid: 1), now: 0)
        _ = s.handle(.probed(.ready("200"), latencyMilliseconds: 1), now: 1)
        #expect(s.handle(.reloadTriggered("src/server.js", processAlive: true), now: 2) == [.probeReadiness])
        #expect(s.state == .reloading)
        #expect(s.handle(.exited(.exited(1)), now: 2.1) == [])  // syntax error: no restart loop
        #expect(s.state == .crashed)
        #expect(s.handle(.reloadTriggered("src/server.js", processAlive: false), now: 5) == [.spawn])
        #expect(s.state == .restarting)
        _ = s.handle(.started(pid: 2), now: 5)
        _ = s.handle(.probed(.ready("200"), latencyMilliseconds: 1), now: 5.2)
        #expect(s.state == .healthy)
        #expect(s.reloadPending == false)
    }

    @Test func reloadThatNeverComesBackIsACrashThatWaitsForTheNextSave() {
        var s = ServiceSupervisor(service: .backend)
        _ = s.handle(.startRequested, now: 0)
        _ = s.handle(.started(pid: 1), now: 0)
        _ = s.handle(.probed(.ready("200"), latencyMilliseconds: 1), now: 1)
        _ = s.handle(.reloadTriggered("src/server.js", processAlive: true), now: 2)
        _ = s.handle(.probed(.notReady("connection refused"), latencyMilliseconds: 1), now: 2.5)
        #expect(s.handle(.startDeadlinePassed, now: 7) == [])  // no restart loop on broken code
        #expect(s.state == .crashed)
        #expect(s.reason.contains("connection refused"))
        // The dev server process is still alive (node --watch waits for changes): the next save probes, no spawn.
        #expect(s.handle(.reloadTriggered("src/server.js", processAlive: true), now: 9) == [.probeReadiness])
        _ = s.handle(.probed(.ready("200"), latencyMilliseconds: 1), now: 9.2)
        #expect(s.state == .healthy)
    }

    @Test func stopWhileHealthy() {
        var s = ServiceSupervisor(service: .frontend)
        _ = s.handle(.startRequested, now: 0)
        _ = s.handle(.started(pid: 1), now: 0)
        _ = s.handle(.probed(.ready("200"), latencyMilliseconds: 1), now: 1)
        #expect(s.handle(.stopRequested, now: 2) == [.stop])
        #expect(s.handle(.exited(.signalled(SIGTERM)), now: 2.1) == [])  // an exit while stopping is not a crash
        _ = s.handle(.stopped, now: 2.2)
        #expect(s.state == .stopped)
        #expect(s.restarts == 0)
    }

    @Test func startTimeoutCountsAsFailure() {
        var s = ServiceSupervisor(service: .backend)
        _ = s.handle(.startRequested, now: 0)
        _ = s.handle(.started(pid: 1), now: 0)
        _ = s.handle(.probed(.notReady("connection refused"), latencyMilliseconds: 1), now: 1)
        let a = s.handle(.startDeadlinePassed, now: 91)
        #expect(a == [.stop, .scheduleRestart(afterSeconds: 0.5)])
        #expect(s.reason.contains("connection refused"))
    }
}
