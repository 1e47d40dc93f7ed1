import Testing
import Dispatch
import Foundation
import SageSystem
@testable import SageCore

/// A runtime that starts nothing: it records the calls the engine makes, from whichever worker thread makes them.
final class RecordingRuntime: ServiceRuntime, @unchecked Sendable {
    let kind = "fake"
    let calls = Locked<[String]>([])
    private let handler = Locked<(@Sendable (RuntimeEvent) -> Void)?>(nil)
    func setEventHandler(_ h: @escaping @Sendable (RuntimeEvent) -> Void) { handler.withValue { $0 = h } }
    func prepare(_ config: Config) throws {}
    func adopt(_ config: Config) -> [ServiceID: RunningService] { [:] }
    func start(_ service: ServiceID, config: Config) throws -> RunningService {
        calls.withValue { $0.append("start \(service)") }
        return RunningService(pid: 4242)
    }
    func stop(_ service: ServiceID, config: Config) throws { calls.withValue { $0.append("stop \(service)") } }
    func runJob(_ command: String, service: ServiceID, config: Config, deadline: Deadline) throws -> CompletedProcess {
        throw RuntimeError(service, "jobs do not run here")
    }
    func details(_ service: ServiceID, config: Config) -> [String: String] { [:] }
    func removeData(config: Config) throws {}
    func exit(_ s: ServiceID) { handler.current?(.exited(s, .exited(1))) }
}

struct AlwaysReady: Probe {
    var target: String { "fake" }
    func check(deadline: Deadline) -> ProbeOutcome { .ready("ok") }
}

struct AlwaysFatal: Probe {
    var target: String { "fake" }
    func check(deadline: Deadline) -> ProbeOutcome { .fatal("wrong password: check VALKEY_PASSWORD in .env") }
}

/// The shell around the machine, with real queues and timers but a recording runtime and probes that answer at once.
@Suite struct EngineShellTests {
    func makeEngine(logs dir: String) throws -> (Engine, RecordingRuntime) {
        // Held open together, so that no two of them can be the same port.
        let listeners = try (0..<4).map { _ in try Listener.tcp(port: 0) }
        let ports = listeners.map(\.port)
        for l in listeners { l.close() }
        let c = try composeTestConfig("POSTGRES_PORT=\(ports[0])\nVALKEY_PORT=\(ports[1])\nBACKEND_PORT=\(ports[2])\nFRONTEND_PORT=\(ports[3])\n")
        let runtime = RecordingRuntime()
        let logs = LogStore(directory: dir)
        let engine = Engine(config: c, runtime: runtime, logs: logs, probes: { _, _ in AlwaysReady() })
        engine.setJobRunner { _, _, _ in ["applied 0 migrations"] }
        return (engine, runtime)
    }

    /// Waits (woken by every notice, bounded by the deadline) until `condition` holds.
    func wait(_ engine: Engine, seconds: Double = 10, _ condition: @escaping @Sendable () -> Bool) -> Bool {
        let changed = DispatchSemaphore(value: 0)
        let token = engine.observe { _ in changed.signal() }
        defer { engine.stopObserving(token) }
        let deadline = Deadline.after(seconds: seconds)
        while !condition() {
            if deadline.hasPassed { return false }
            _ = changed.wait(timeout: .now() + .milliseconds(Int(min(deadline.remainingMilliseconds, 100))))
        }
        return true
    }

    @Test func upBringsEveryServiceToHealthyInGraphOrder() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/sagedev-engine-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (engine, runtime) = try makeEngine(logs: dir)
        #expect(engine.up() == nil)
        #expect(wait(engine) { engine.upOutcome(ServiceID.standard).done })
        #expect(engine.upOutcome(ServiceID.standard).failure == nil)
        let starts = runtime.calls.current
        #expect(Set(starts.prefix(2)) == ["start postgres", "start valkey"])
        #expect(Array(starts.suffix(2)) == ["start backend", "start frontend"])
        #expect(engine.machineSnapshot.jobs[.database]?.state == .succeeded)
    }

    @Test func stopReturnsOnceEverythingIsDownDependentsFirst() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/sagedev-engine-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (engine, runtime) = try makeEngine(logs: dir)
        _ = engine.up()
        #expect(wait(engine) { engine.upOutcome(ServiceID.standard).done })
        engine.stop(ServiceID.standard)
        #expect(engine.snapshot().allSatisfy { $0.supervisor.state == .stopped && !$0.wanted })
        let stops = runtime.calls.current.filter { $0.hasPrefix("stop") }
        #expect(Array(stops.prefix(2)) == ["stop frontend", "stop backend"])
        #expect(Set(stops.suffix(2)) == ["stop postgres", "stop valkey"])
    }

    /// With readiness polls 60 s apart, valkey is healthy as soon as its log says something: the line wakes the
    /// probe that waits out its pause.
    @Test func aLineInTheServicesLogRunsItsWaitingReadinessProbeAtOnce() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/sagedev-engine-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try composeTestConfig("POSTGRES_PORT=1\nVALKEY_PORT=\(try Listener.tcp(port: 0).port)\nBACKEND_PORT=3\nFRONTEND_PORT=4\n")
        let runtime = RecordingRuntime()
        let logs = LogStore(directory: dir)
        let engine = Engine(config: c, runtime: runtime, logs: logs, probes: { _, _ in AlwaysReady() },
                            schedule: ProbeSchedule(initialIntervalMilliseconds: 60_000, maximumIntervalMilliseconds: 60_000))
        #expect(engine.up([.valkey]) == nil)
        #expect(wait(engine) { engine.snapshot().first { $0.service == .valkey }?.running != nil })
        #expect(engine.snapshot().first { $0.service == .valkey }?.supervisor.state == .starting)
        logs.appendLine("valkey", "* Ready to accept connections tcp")
        #expect(wait(engine, seconds: 10) { engine.upOutcome([.valkey]).done && engine.upOutcome([.valkey]).failure == nil })
    }

    /// An event's work comes before its notices: an observer that hears a service gave up (as `up`'s failure reply
    /// does) finds the reason already in the service's log.
    @Test func observersHearOfAGiveUpAfterItsReasonIsInTheLog() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/sagedev-engine-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try composeTestConfig("POSTGRES_PORT=1\nVALKEY_PORT=\(try Listener.tcp(port: 0).port)\nBACKEND_PORT=3\nFRONTEND_PORT=4\n")
        let logs = LogStore(directory: dir)
        let engine = Engine(config: c, runtime: RecordingRuntime(), logs: logs, probes: { _, _ in AlwaysFatal() })
        let heard = Locked<[String]?>(nil)
        _ = engine.observe { notice in
            guard case .changed(.valkey, .failed, _, _) = notice else { return }
            heard.withValue { if $0 == nil { $0 = logs.tail("valkey", 20).map(\.text) } }
        }
        #expect(engine.up([.valkey]) == nil)
        #expect(wait(engine) { heard.current != nil })
        #expect(heard.current?.contains("sagedev: wrong password: check VALKEY_PASSWORD in .env") == true, "\(heard.current ?? [])")
    }

    @Test func anExitReportedByTheRuntimeIsRestartedAfterTheBackoff() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/sagedev-engine-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (engine, runtime) = try makeEngine(logs: dir)
        _ = engine.up([.valkey])
        #expect(wait(engine) { engine.upOutcome([.valkey]).done })
        runtime.exit(.valkey)
        #expect(wait(engine) { engine.snapshot().first { $0.service == .valkey }?.supervisor.restarts == 1 })
        #expect(wait(engine) { engine.upOutcome([.valkey]).done && engine.upOutcome([.valkey]).failure == nil })
    }
}
