import Dispatch
import SageSystem

/// How database operations stop the backend (releasing its connections) and start it again.
public protocol BackendControl: AnyObject, Sendable {
    /// Whether the backend is meant to run now (so it must be started again afterwards).
    var isBackendRunning: Bool { get }
    func stopBackend() throws
    /// Starts the backend and returns once it is healthy; throws with the reason when it is not by the deadline.
    func startBackend(deadline: Deadline) throws
}

/// The backend as the daemon's engine runs it.
public final class EngineBackendControl: BackendControl, @unchecked Sendable {
    public let engine: Engine
    public init(engine: Engine) { self.engine = engine }

    public var isBackendRunning: Bool {
        engine.snapshot().first { $0.service == .backend }?.wanted ?? false
    }

    public func stopBackend() throws {
        engine.stop([.backend], deadline: .after(seconds: 30))
        if let s = engine.snapshot().first(where: { $0.service == .backend }), s.supervisor.state != .stopped {
            throw DatabaseError(.backend, "the backend did not stop (state \(s.supervisor.state.rawValue)); see 'sagedev logs backend'")
        }
    }

    public func startBackend(deadline: Deadline) throws {
        if let conflict = engine.up([.backend]) {
            throw DatabaseError(.backend, "the backend could not start: \(conflict)")
        }
        // Woken by every engine notice; the timed wait only bounds a missed wake-up.
        let changed = DispatchSemaphore(value: 0)
        let token = engine.observe { _ in changed.signal() }
        defer { engine.stopObserving(token) }
        while true {
            let outcome = engine.upOutcome([.backend])
            if let (_, why) = outcome.failure {
                throw DatabaseError(.backend, "the backend did not become healthy: \(why); see 'sagedev logs backend'")
            }
            if outcome.done { return }
            if deadline.hasPassed {
                throw DatabaseError(.backend, "the backend was not healthy in time; see 'sagedev status' and 'sagedev logs backend'")
            }
            _ = changed.wait(timeout: .now() + .milliseconds(Int(min(deadline.remainingMilliseconds, 250))))
        }
    }
}
