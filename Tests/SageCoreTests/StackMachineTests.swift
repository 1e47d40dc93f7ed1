import Testing
import SageSystem
@testable import SageCore

/// The stack machine driven directly: a fake runtime answers its actions and a manual clock moves time.
@Suite struct StackMachineTests {
    // MARK: order

    @Test func startsTheDataServicesFirstAndTogether() throws {
        var h = try StackHarness()
        let a = h.command(.up([.postgres, .valkey, .backend, .frontend]))
        #expect(h.spawned(a) == [.postgres, .valkey])
        #expect(h.state(.backend) == .stopped)
    }

    @Test func runsTheDatabaseJobOncePostgresIsHealthy() throws {
        var h = try StackHarness()
        h.command(.up([.frontend]))
        h.started(.postgres)
        #expect(h.runningJobs.isEmpty)
        let a = h.probe(.postgres, .ready("SELECT 1 ok"))
        #expect(h.ranJobs(a) == [.database])
        h.startHealthy(.valkey)
        #expect(h.pendingSpawns.isEmpty, "no app starts before the job completed")
    }

    @Test func theJobsSuccessStartsTheBackendThenTheFrontendOnceTheBackendIsHealthy() throws {
        var h = try StackHarness()
        h.command(.up([.frontend]))
        h.startHealthy(.postgres)
        h.startHealthy(.valkey)
        let a = h.jobFinished(.database, .succeeded(["applied 2 migrations in 4 ms"]))
        #expect(h.spawned(a) == [.backend])
        #expect(a.contains(.notify(.step("database", "applied 2 migrations in 4 ms"))))
        h.started(.backend)
        let b = h.probe(.backend, .ready("200"))
        #expect(h.spawned(b) == [.frontend])
    }

    @Test func readinessProbesWakeOnTheServicesOutputAndLivenessProbesDoNot() throws {
        var h = try StackHarness()
        h.command(.up([.valkey]))
        let started = h.started(.valkey)
        let readiness = started.compactMap { a -> Bool? in if case .probe(.valkey, _, _, _, let wake) = a { return wake }; return nil }
        #expect(readiness == [true])
        let healthy = h.probe(.valkey, .ready("PONG"))
        let liveness = healthy.compactMap { a -> Bool? in if case .probe(.valkey, _, _, _, let wake) = a { return wake }; return nil }
        #expect(liveness == [false])
    }

    @Test func upStartsWhatTheServiceDependsOn() throws {
        var h = try StackHarness()
        h.command(.up([.backend]))
        #expect(h.pendingSpawns == [.postgres, .valkey])
        #expect(h.machine.units[.frontend]?.wanted == false)
    }

    @Test func stopsDependentsFirstAndWhatIsIndependentTogether() throws {
        var h = try StackHarness.healthyStack()
        let a = h.command(.stop([.postgres, .valkey, .backend, .frontend]))
        #expect(h.stopped(a) == [.frontend])
        #expect([ServiceID.postgres, .valkey, .backend, .frontend].allSatisfy { h.state($0) == .stopping })
        #expect(h.stopped(h.stopFinished(.frontend)) == [.backend])
        #expect(h.stopped(h.stopFinished(.backend)) == [.valkey, .postgres])
        h.stopFinished(.valkey)
        h.stopFinished(.postgres)
        #expect(h.machine.isStopped([.postgres, .valkey, .backend, .frontend]))
        #expect(h.machine.stopsSettled([.postgres, .valkey, .backend, .frontend]))
    }

    @Test func aStopAskedForDuringASpawnWaitsForTheStart() throws {
        var h = try StackHarness()
        h.command(.up([.valkey]))
        #expect(h.stopped(h.command(.stop([.valkey]))).isEmpty)
        #expect(h.stopped(h.started(.valkey)) == [.valkey], "the process that was starting is stopped once it runs")
        h.stopFinished(.valkey)
        #expect(h.state(.valkey) == .stopped)
    }

    // MARK: dependencies

    @Test func aDependencyOutageIsReportedAndClearsWhenItRecovers() throws {
        var h = try StackHarness.healthyStack()
        h.probe(.postgres, .notReady("connection refused"))
        #expect(h.state(.postgres) == .unhealthy)
        #expect(h.machine.dependencyOutage(of: .backend) == [.postgres])
        h.probe(.postgres, .ready("SELECT 1 ok"))
        #expect(h.machine.dependencyOutage(of: .backend).isEmpty)
        #expect(h.state(.backend) == .healthy, "the backend kept running through the outage")
    }

    /// A backend's /health answers 503 while postgres restarts: that is the outage, not a broken backend, and
    /// restarting the backend would not help. (It was restarted after three such probes, and `status` showed it
    /// unhealthy for up to a liveness interval after postgres came back.)
    @Test func livenessFailuresDuringADependencyOutageDoNotRestartTheDependent() throws {
        var h = try StackHarness.healthyStack()
        h.exited(.postgres, .signalled(9))
        for _ in 0..<5 {
            let a = h.probe(.backend, .notReady("http://127.0.0.1:3000/health answered HTTP 503"))
            #expect(h.stopped(a).isEmpty)
        }
        #expect(h.state(.backend) == .unhealthy)
        #expect(h.machine.units[.backend]?.supervisor.reason.contains("waiting on postgres") == true,
                "\(h.machine.units[.backend]?.supervisor.reason ?? "")")
        #expect(h.machine.units[.backend]?.supervisor.restarts == 0)
        #expect(h.hasProbe(.backend), "it keeps being probed")
    }

    @Test func aDependentIsProbedAtOnceWhenItsDependencyRecovers() throws {
        var h = try StackHarness.healthyStack()
        h.exited(.postgres, .signalled(9))
        h.probe(.backend, .notReady("HTTP 503"))
        h.advance(seconds: 1)
        h.started(.postgres)
        let a = h.probe(.postgres, .ready("SELECT 1 ok"))
        let immediate = a.contains { if case .probe(.backend, _, let after, _, _) = $0 { return after == 0 }; return false }
        #expect(immediate, "\(a)")
        h.probe(.backend, .ready("HTTP 200"))
        #expect(h.state(.backend) == .healthy)
    }

    /// A /health that hung on the outage for its whole 2 s deadline reports after postgres is back: that failure
    /// is the outage's too, and the backend is probed again at once rather than shown unhealthy for 2 s.
    @Test func aProbeInFlightAcrossTheRecoveryCountsAsTheOutageAndIsRetriedAtOnce() throws {
        var h = try StackHarness.healthyStack()
        h.exited(.postgres, .signalled(9))
        h.advance(seconds: 1)
        h.started(.postgres)
        h.probe(.postgres, .ready("SELECT 1 ok"))
        // The backend's liveness probe was sent before the recovery and answers 2 s after it was sent.
        guard let pending = h.pendingProbe(.backend) else { Issue.record("no backend probe pending"); return }
        let a = h.send(.probed(.backend, generation: pending.generation, .notReady("no response before the deadline"),
                               latencyMilliseconds: 2000, restartMarker: nil))
        let immediate = a.contains { if case .probe(.backend, _, let after, _, _) = $0 { return after == 0 }; return false }
        #expect(immediate, "\(a)")
        #expect(h.machine.units[.backend]?.supervisor.livenessFailures == 0)
        h.probe(.backend, .ready("HTTP 200"))
        #expect(h.state(.backend) == .healthy)
    }

    /// Outside an outage the liveness rule stands: three failures in a row restart the service.
    @Test func threeLivenessFailuresWithItsDependenciesUpRestartTheService() throws {
        var h = try StackHarness.healthyStack()
        var stops: [ServiceID] = []
        for _ in 0..<3 { stops += h.stopped(h.probe(.backend, .notReady("HTTP 500"))) }
        #expect(stops == [.backend])
    }

    @Test func aDependentWaitsForItsDependencyToRecoverBeforeStarting() throws {
        var h = try StackHarness.healthyStack()
        h.exited(.postgres, .signalled(9))
        #expect(h.state(.postgres) == .crashed)
        h.command(.restart([.backend], afterFileChange: false))
        h.stopFinished(.backend)
        #expect(!h.pendingSpawns.contains(.backend), "postgres is down: the backend waits")
        h.advance(seconds: 0.5)
        #expect(h.pendingSpawns.contains(.postgres))
        h.started(.postgres)
        let a = h.probe(.postgres, .ready("SELECT 1 ok"))
        #expect(h.spawned(a) == [.backend])
    }

    // MARK: crashes

    @Test func aCrashRestartsAfterTheBackoff() throws {
        var h = try StackHarness.healthyStack()
        let a = h.exited(.backend, .exited(1))
        #expect(h.state(.backend) == .crashed)
        #expect(a.contains { if case .log("backend", let line) = $0 { return line.hasPrefix("sagedev: process exited") }; return false })
        #expect(h.spawned(h.advance(seconds: 0.4)).isEmpty)
        #expect(h.spawned(h.advance(seconds: 0.1)) == [.backend])
        #expect(h.state(.backend) == .restarting)
    }

    @Test func aFailedLivenessIsStoppedBeforeTheRestartSpawns() throws {
        var h = try StackHarness.healthyStack()
        for _ in 0..<3 { h.probe(.valkey, .notReady("timeout")) }
        #expect(h.pendingStops == [.valkey])
        #expect(h.spawned(h.advance(seconds: 1)).isEmpty, "the old process is still being stopped")
        #expect(h.spawned(h.stopFinished(.valkey)) == [.valkey])
    }

    @Test func aStartThatNeverBecomesReadyIsStoppedAtTheDeadline() throws {
        var h = try StackHarness.healthyStack()
        h.command(.restart([.frontend], afterFileChange: false))
        h.stopFinished(.frontend)
        h.started(.frontend)
        h.probe(.frontend, .notReady("connection refused"))
        #expect(h.stopped(h.advance(seconds: 89)).isEmpty)
        #expect(h.stopped(h.advance(seconds: 1.1)) == [.frontend])
        #expect(h.state(.frontend) == .crashed)
    }

    @Test func aFailedServiceGetsAFreshStartFromUp() throws {
        var h = try StackHarness()
        h.command(.up([.postgres]))
        h.started(.postgres)
        h.probe(.postgres, .fatal("password authentication failed"))
        #expect(h.state(.postgres) == .failed)
        #expect(h.machine.upOutcome([.postgres]).failure?.0 == .postgres)
        #expect(h.stopped(h.command(.up([.postgres]))) == [.postgres], "its process still runs: stopped first")
        #expect(h.spawned(h.stopFinished(.postgres)) == [.postgres])
        #expect(h.machine.units[.postgres]?.supervisor.consecutiveFailures == 0)
    }

    // MARK: the database job

    @Test func aFailedJobIsReportedAndTheAppsDoNotStart() throws {
        var h = try StackHarness()
        h.command(.up([.frontend]))
        h.startHealthy(.postgres)
        h.startHealthy(.valkey)
        let a = h.jobFinished(.database, .failed("migration 002_users.sql failed: syntax error at line 3"))
        #expect(h.spawned(a).isEmpty)
        #expect(a.contains(.notify(.step("database", "failed: migration 002_users.sql failed: syntax error at line 3"))))
        let outcome = h.machine.upOutcome([.postgres, .valkey, .backend, .frontend])
        #expect(outcome.done)
        #expect(outcome.failure?.0 == .database)
    }

    @Test func upAfterAFailedJobRunsItAgain() throws {
        var h = try StackHarness()
        h.command(.up([.backend]))
        h.startHealthy(.postgres)
        h.startHealthy(.valkey)
        h.jobFinished(.database, .failed("boom"))
        #expect(h.ranJobs(h.command(.up([.backend]))) == [.database])
        #expect(h.spawned(h.jobFinished(.database, .succeeded([]))) == [.backend])
    }

    @Test func rerunningTheJobLeavesTheAppsRunning() throws {
        var h = try StackHarness.healthyStack()
        let a = h.command(.rerunJob(.database, reason: "db/migrations/003.sql changed; applying migrations"))
        #expect(h.ranJobs(a) == [.database])
        #expect(h.stopped(a).isEmpty)
        h.jobFinished(.database, .succeeded(["applied 1 migration in 2 ms"]))
        #expect(h.state(.backend) == .healthy && h.state(.frontend) == .healthy)
    }

    @Test func aRerunWhileTheJobRunsIsIgnored() throws {
        var h = try StackHarness.healthyStack()
        h.command(.rerunJob(.database, reason: "a"))
        #expect(h.ranJobs(h.command(.rerunJob(.database, reason: "b"))).isEmpty)
    }

    // MARK: reset orchestration

    @Test func aResetStopsEveryWantedDependentOfPostgresAndStartsThemAgain() throws {
        var h = try StackHarness.healthyStack()
        let dependents = h.machine.wantedDependents(of: .postgres)
        #expect(dependents == [.backend, .frontend])
        #expect(h.stopped(h.command(.stop(dependents))) == [.frontend])
        h.stopFinished(.frontend)
        h.stopFinished(.backend)
        #expect(h.state(.postgres) == .healthy && h.state(.valkey) == .healthy)
        #expect(h.machine.stopsSettled(dependents))
        let a = h.command(.up(dependents))
        #expect(h.spawned(a) == [.backend], "the job already ran: the backend starts at once")
        #expect(h.ranJobs(a).isEmpty)
        h.started(.backend)
        #expect(h.spawned(h.probe(.backend, .ready("200"))) == [.frontend])
    }

    // MARK: adoption

    @Test func adoptedServicesAreProbedNotSpawnedAndTheirJobCountsAsDone() throws {
        var h = try StackHarness()
        let found: [ServiceID: RunningService] = [.postgres: RunningService(pid: 11), .valkey: RunningService(pid: 12),
                                                  .backend: RunningService(pid: 13)]
        let a = h.send(.adopted(found))
        #expect(h.spawned(a).isEmpty)
        #expect(h.hasProbe(.postgres) && h.hasProbe(.valkey) && h.hasProbe(.backend))
        #expect(h.job(.database) == .succeeded)
        #expect(h.state(.backend) == .starting)
        h.probe(.backend, .ready("200"))
        #expect(h.state(.backend) == .healthy)
        #expect(h.machine.units[.backend]?.running?.pid == 13)
    }

    // MARK: hot reload

    @Test func aSelfReloadIsConfirmedOnlyOnceTheRestartMarkerMoves() throws {
        var h = try StackHarness.healthyStack()
        h.command(.reloadTriggered(.backend, file: "src/version.js", changedAt: h.ago(0.05), restartMarker: "pids 20 21"))
        #expect(h.state(.backend) == .reloading)
        h.probe(.backend, .ready("200"), marker: "pids 20 21")
        #expect(h.state(.backend) == .reloading, "the old process answered")
        let a = h.probe(.backend, .ready("200"), marker: "pids 20 35")
        #expect(h.state(.backend) == .healthy)
        let r = h.machine.units[.backend]?.reload
        #expect(r?.outcome == "reloaded" && r?.action == "self" && r?.count == 1)
        #expect((r?.healthyMilliseconds ?? 0) >= 50)
        #expect(a.contains { if case .notify(.step("reload", let m)) = $0 { return m.hasPrefix("backend reloaded in") }; return false })
    }

    @Test func aSelfReloadTheDevServerMissedIsRestartedAfterTheSettleTime() throws {
        var h = try StackHarness.healthyStack()
        h.command(.reloadTriggered(.backend, file: "src/version.js", changedAt: h.ago(0), restartMarker: "m1"))
        var stops: [ServiceID] = []
        for _ in 0..<500 where stops.isEmpty { stops = h.stopped(h.probe(.backend, .ready("200"), marker: "m1")) }
        #expect(stops == [.backend])
        #expect(h.machine.units[.backend]?.reload?.action == "restart (the dev server missed the change)")
        #expect(h.machine.units[.backend]?.reload?.count == 1)
        #expect(h.spawned(h.stopFinished(.backend)) == [.backend])
        h.startHealthy(.backend)
        #expect(h.machine.units[.backend]?.reload?.outcome == "reloaded")
    }

    @Test func aSelfReloadThatNeverComesBackCrashesAtTheReloadTimeout() throws {
        var h = try StackHarness.healthyStack()
        h.command(.reloadTriggered(.backend, file: "src/version.js", changedAt: h.ago(0), restartMarker: "m1"))
        h.probe(.backend, .notReady("connection refused"))
        h.advance(seconds: 5)
        #expect(h.state(.backend) == .crashed)
        #expect(h.machine.units[.backend]?.reload?.outcome == "crashed")
    }

    @Test func aRestartModeReloadStopsAndStartsAndIsTimedFromTheChange() throws {
        var h = try StackHarness.healthyStack()
        let a = h.command(.restartForReload(.backend, file: "src/server.js", action: "restart", changedAt: h.ago(0.05)))
        #expect(h.stopped(a) == [.backend])
        #expect(h.spawned(h.stopFinished(.backend)) == [.backend])
        h.startHealthy(.backend)
        let r = h.machine.units[.backend]?.reload
        #expect(r?.outcome == "reloaded" && r?.action == "restart")
        #expect((r?.healthyMilliseconds ?? 0) >= 50)
    }

    @Test func aFailedInstallIsTheReloadsOutcomeAndRestartsNothing() throws {
        var h = try StackHarness.healthyStack()
        let a = h.command(.installFinished(.backend, file: "package.json", changedAt: h.ago(1), failure: "npm install failed (exit code 1)"))
        #expect(h.stopped(a).isEmpty)
        #expect(h.machine.units[.backend]?.reload?.outcome == "failed: npm install failed (exit code 1)")
    }

    /// The wedge from the field: a self-reload arriving while the restart after a missed change is still starting
    /// left the service `starting` forever, with no probe running, although the server answered.
    @Test func aReloadArrivingWhileStartingKeepsTheReadinessProbesGoing() throws {
        var h = try StackHarness.healthyStack()
        // 1. An edit the dev server reloads itself.
        h.command(.reloadTriggered(.backend, file: "src/version.js", changedAt: h.ago(0), restartMarker: "m1"))
        h.probe(.backend, .ready("200"), marker: "m2")
        #expect(h.state(.backend) == .healthy)
        // 2. A syntax error the dev server misses: restarted after the settle time; the new one cannot load the code.
        h.command(.reloadTriggered(.backend, file: "src/version.js", changedAt: h.ago(0), restartMarker: "m2"))
        for _ in 0..<500 where h.pendingStops.isEmpty { h.probe(.backend, .ready("200"), marker: "m2") }
        #expect(h.pendingStops == [.backend])
        h.stopFinished(.backend)
        h.started(.backend)
        h.probe(.backend, .notReady("connection refused"))
        #expect(h.state(.backend) == .starting)
        // 3. The fix arrives while that restart is still starting.
        h.command(.reloadTriggered(.backend, file: "src/version.js", changedAt: h.ago(0), restartMarker: "m3"))
        #expect(h.hasProbe(.backend))
        h.probe(.backend, .ready("200"))
        #expect(h.state(.backend) == .healthy)
        #expect(h.machine.units[.backend]?.reload?.outcome == "reloaded")
        #expect((h.machine.units[.backend]?.reload?.healthyMilliseconds ?? .max) < 1000)
    }

    @Test func aReloadWhileARestartAfterAChangeStartsGetsTheReloadTimeoutFromThatSave() throws {
        var h = try StackHarness.healthyStack()
        h.command(.restartForReload(.backend, file: "src/server.js", action: "restart", changedAt: h.ago(0)))
        h.stopFinished(.backend)
        h.started(.backend)
        h.probe(.backend, .notReady("connection refused"))
        h.advance(seconds: 4)
        h.command(.reloadTriggered(.backend, file: "src/server.js", changedAt: h.ago(0), restartMarker: nil))
        h.advance(seconds: 2)
        #expect(h.state(.backend) == .starting, "5 s from the start, but only 2 s from the last save")
        h.advance(seconds: 3.1)
        #expect(h.state(.backend) == .crashed)
    }
}
