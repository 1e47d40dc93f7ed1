import Testing
import SageSystem
@testable import SageCore

/// The stack machine with a manual clock and a fake runtime: it records what the machine asks for (spawns, stops,
/// probes, jobs, timers) and lets a test answer each, as the shell and the real runtime would.
struct StackHarness {
    var machine: StackMachine
    var now = Instant(nanoseconds: 1_000_000_000_000, wallSeconds: 1_800_000_000)
    /// Every action, in order.
    var actions: [StackAction] = []
    var notices: [EngineNotice] { actions.compactMap { if case .notify(let n) = $0 { return n }; return nil } }
    private(set) var spawns: [ServiceID: Int] = [:]
    private(set) var probes: [ServiceID: (generation: Int, due: UInt64, readMarker: Bool)] = [:]
    private(set) var timers: [(token: TimerToken, due: UInt64)] = []
    private(set) var stops: [ServiceID] = []
    private(set) var runningJobs: [ServiceID: Int] = [:]
    private var nextPid: Int32 = 100

    init(policy: StackPolicy = StackPolicy()) throws {
        let c = try composeTestConfig()
        machine = StackMachine(config: c, policy: policy)
    }

    func state(_ id: ServiceID) -> ServiceState? { machine.units[id]?.supervisor.state }
    func job(_ id: ServiceID) -> StackMachine.Job.State? { machine.jobs[id]?.state }
    func spawned(_ a: [StackAction]) -> [ServiceID] { a.compactMap { if case .spawn(let id, _) = $0 { return id }; return nil } }
    func stopped(_ a: [StackAction]) -> [ServiceID] { a.compactMap { if case .stop(let id) = $0 { return id }; return nil } }
    func ranJobs(_ a: [StackAction]) -> [ServiceID] { a.compactMap { if case .runJob(let id, _, _) = $0 { return id }; return nil } }
    var pendingSpawns: Set<ServiceID> { Set(spawns.keys) }
    var pendingStops: [ServiceID] { stops }
    func hasProbe(_ id: ServiceID) -> Bool { probes[id] != nil }
    func pendingProbe(_ id: ServiceID) -> (generation: Int, due: UInt64, readMarker: Bool)? { probes[id] }

    @discardableResult
    mutating func send(_ e: StackEvent) -> [StackAction] {
        let a = machine.handle(e, now: now)
        actions += a
        for action in a {
            switch action {
            case .spawn(let id, let gen): spawns[id] = gen; probes[id] = nil
            case .stop(let id): stops.append(id); probes[id] = nil
            case .probe(let id, let gen, let after, let readMarker, _):
                probes[id] = (gen, now.nanoseconds + UInt64(after * 1e9), readMarker)
            case .runJob(let id, let gen, _): runningJobs[id] = gen
            case .scheduleTimer(let token, let after): timers.append((token, now.nanoseconds + UInt64(after * 1e9)))
            case .notify, .log: break
            }
        }
        return a
    }

    @discardableResult
    mutating func command(_ c: StackCommand) -> [StackAction] { send(.commandReceived(c)) }

    @discardableResult
    mutating func started(_ id: ServiceID) -> [StackAction] {
        guard let gen = spawns.removeValue(forKey: id) else { Issue.record("no spawn of \(id) is pending"); return [] }
        nextPid += 1
        return send(.processStarted(id, generation: gen, RunningService(pid: nextPid, startedAt: now.wallSeconds)))
    }

    @discardableResult
    mutating func startFailed(_ id: ServiceID, _ why: String) -> [StackAction] {
        guard let gen = spawns.removeValue(forKey: id) else { Issue.record("no spawn of \(id) is pending"); return [] }
        return send(.processStartFailed(id, generation: gen, why))
    }

    /// Answers the pending probe of `id` (the clock moves to when it was due, if that is later).
    @discardableResult
    mutating func probe(_ id: ServiceID, _ outcome: ProbeOutcome, marker: String? = nil) -> [StackAction] {
        guard let p = probes.removeValue(forKey: id) else { Issue.record("no probe of \(id) is pending"); return [] }
        advance(toNanoseconds: p.due)
        return send(.probed(id, generation: p.generation, outcome, latencyMilliseconds: 0.2, restartMarker: p.readMarker ? marker : nil))
    }

    @discardableResult
    mutating func exited(_ id: ServiceID, _ status: SageSystem.ExitStatus = .exited(1)) -> [StackAction] { send(.processExited(id, status)) }

    @discardableResult
    mutating func stopFinished(_ id: ServiceID) -> [StackAction] {
        guard let i = stops.firstIndex(of: id) else { Issue.record("no stop of \(id) is pending"); return [] }
        stops.remove(at: i)
        return send(.stopFinished(id, failure: nil))
    }

    @discardableResult
    mutating func jobFinished(_ id: ServiceID, _ result: JobResult) -> [StackAction] {
        guard let gen = runningJobs.removeValue(forKey: id) else { Issue.record("no job \(id) is running"); return [] }
        return send(.jobFinished(id, generation: gen, result))
    }

    /// Moves the clock, firing the timers that fall due on the way, in order. Returns what they caused.
    @discardableResult
    mutating func advance(seconds: Double) -> [StackAction] {
        advance(toNanoseconds: now.nanoseconds + UInt64(seconds * 1e9))
    }

    @discardableResult
    private mutating func advance(toNanoseconds target: UInt64) -> [StackAction] {
        var out: [StackAction] = []
        while let i = timers.indices.filter({ timers[$0].due <= target }).min(by: { timers[$0].due < timers[$1].due }) {
            let t = timers.remove(at: i)
            moveClock(to: max(t.due, now.nanoseconds))
            out += send(.timerFired(t.token))
        }
        moveClock(to: max(target, now.nanoseconds))
        return out
    }

    private mutating func moveClock(to ns: UInt64) {
        now = Instant(nanoseconds: ns, wallSeconds: now.wallSeconds + Double(ns - now.nanoseconds) / 1e9)
    }

    /// A monotonic reading `seconds` ago (a file change the watcher saw a moment before it reported it).
    func ago(_ seconds: Double) -> UInt64 { now.nanoseconds - UInt64(seconds * 1e9) }

    /// Starts `id` and answers its first probe as ready.
    mutating func startHealthy(_ id: ServiceID) {
        started(id)
        probe(id, .ready("ok"))
    }

    /// The whole stack up and healthy, the database job done.
    static func healthyStack(policy: StackPolicy = StackPolicy()) throws -> StackHarness {
        var h = try StackHarness(policy: policy)
        h.command(.up([.postgres, .valkey, .backend, .frontend]))
        h.startHealthy(.postgres)
        h.startHealthy(.valkey)
        h.jobFinished(.database, .succeeded(["applied 1 migration in 3 ms"]))
        h.startHealthy(.backend)
        h.startHealthy(.frontend)
        #expect([ServiceID.postgres, .valkey, .backend, .frontend].allSatisfy { h.state($0) == .healthy })
        return h
    }
}
