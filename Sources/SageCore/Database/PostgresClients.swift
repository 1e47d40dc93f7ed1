import Dispatch
import SageSystem

/// A service's process as a database operation sees it: enough to tell afterwards whether it died meanwhile.
public struct ClientProcess: Sendable, Equatable {
    public var pid: Int32?
    public var restarts: Int
    public init(pid: Int32?, restarts: Int) { self.pid = pid; self.restarts = restarts }
}

/// How database operations stop the services that hold connections to postgres (its clients: every service that
/// depends on it, directly or through a job such as the database step) and start them again.
public protocol PostgresClientControl: AnyObject, Sendable {
    /// The clients of postgres that are meant to run now, in start order.
    func runningClients() -> [ServiceID]
    /// Stops them (dependents first) and returns once they are down.
    func stop(_ services: [ServiceID]) throws
    /// Starts them and returns once they are healthy; throws with the reason when they are not by the deadline.
    func start(_ services: [ServiceID], deadline: Deadline) throws
    /// Each one's pid and restart count now.
    func processes(_ services: [ServiceID]) -> [ServiceID: ClientProcess]
}

extension ServiceGraph {
    /// The services that connect to postgres: those that depend on it directly or through a job (the database step
    /// is a job between postgres and the apps). A service that only depends on another app (the frontend on the
    /// backend) holds no connection of its own and keeps running.
    public var postgresClients: [ServiceID] {
        var reaching: Set<ServiceID> = [.postgres]
        var out: [ServiceID] = []
        for s in specs where s.dependsOn.contains(where: { reaching.contains($0.id) }) {
            if s.isJob { reaching.insert(s.id) } else if s.id != .postgres { out.append(s.id) }
        }
        return out
    }
}

/// The clients of postgres as the daemon's engine runs them.
public final class EnginePostgresClients: PostgresClientControl, @unchecked Sendable {
    public let engine: Engine
    /// The clients in the configuration in force (from its service graph).
    private let clients: @Sendable (Config) -> [ServiceID]

    public init(engine: Engine, clients: @escaping @Sendable (Config) -> [ServiceID]) {
        self.engine = engine; self.clients = clients
    }

    public func runningClients() -> [ServiceID] {
        let wanted = Set(engine.snapshot().filter(\.wanted).map { $0.service })
        return clients(engine.config).filter { wanted.contains($0) }
    }

    public func stop(_ services: [ServiceID]) throws {
        guard !services.isEmpty else { return }
        engine.stop(services, deadline: .after(seconds: 30))
        let still = engine.snapshot().filter { s in services.contains(s.service) && s.supervisor.state != .stopped }
        if let s = still.first {
            throw DatabaseError(.backend, "\(s.service.rawValue) did not stop (state \(s.supervisor.state.rawValue)); see 'sagedev logs \(s.service.rawValue)'")
        }
    }

    public func start(_ services: [ServiceID], deadline: Deadline) throws {
        guard !services.isEmpty else { return }
        let list = services
        if let conflict = engine.up(list) {
            throw DatabaseError(.backend, "\(services.map(\.rawValue).joined(separator: ", ")) could not start: \(conflict)")
        }
        // Woken by every engine notice; the timed wait only bounds a missed wake-up.
        let changed = DispatchSemaphore(value: 0)
        let token = engine.observe { _ in changed.signal() }
        defer { engine.stopObserving(token) }
        while true {
            let outcome = engine.upOutcome(list)
            if let (s, why) = outcome.failure {
                let name = s?.rawValue ?? "database"
                throw DatabaseError(.backend, "\(name) did not become healthy: \(why); see 'sagedev logs \(name)'")
            }
            if outcome.done { return }
            if deadline.hasPassed {
                throw DatabaseError(.backend, "\(services.map(\.rawValue).joined(separator: ", ")) not healthy in time; see 'sagedev status' and 'sagedev logs'")
            }
            _ = changed.wait(timeout: .now() + .milliseconds(Int(min(deadline.remainingMilliseconds, 250))))
        }
    }

    public func processes(_ services: [ServiceID]) -> [ServiceID: ClientProcess] {
        var out: [ServiceID: ClientProcess] = [:]
        for s in engine.snapshot() where services.contains(s.service) {
            out[s.service] = ClientProcess(pid: s.running?.pid, restarts: s.supervisor.restarts)
        }
        return out
    }

    /// The pid of the running postgres (for the fault seam).
    public var postgresPid: Int32? { engine.snapshot().first { $0.service == .postgres }?.running?.pid }
}
