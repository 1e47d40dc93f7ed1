import SageSystem

/// A database operation as data: what it does before and with the clients of postgres stopped, whether it stops
/// them at all, and what a failure means for them. `DatabaseManager.execute` runs every one the same way: under the
/// operation lock, stop the clients (when asked), the critical section, then start them again once the lock is
/// released, so the next operation can begin while the apps start.
struct DatabaseOperation {
    enum Clients: Equatable {
        /// The apps keep their processes; the operation ends their database sessions itself where it must.
        case keepRunning
        /// The clients of postgres are stopped before the critical section and started again after it.
        case stopAround
    }

    /// What to tell the person, and whether starting the clients again is safe (the data is whole) or they stay
    /// stopped until the database is fixed.
    struct Failure {
        var message: String
        var restartClients: Bool
        var code: DatabaseError.Code
    }

    var name: String
    var clients: Clients
    /// Work that needs no one stopped: checks, and building a database under a temporary name.
    var prepare: (OperationContext) throws -> Void = { _ in }
    /// The part that changes the app database.
    var critical: (OperationContext) throws -> Void
    var onFailure: (OperationContext, Error) -> Failure
    /// After the clients are back (outside the lock): last steps, and what the report says besides its steps.
    var finish: (OperationContext) throws -> (inout DatabaseReport) -> Void = { _ in { _ in } }
}

/// What the steps of one operation share.
final class OperationContext {
    let config: Config
    let recorder: StepRecorder
    let admin: ClusterAdmin
    /// The clients this operation stopped (to start again).
    var stoppedClients: [ServiceID] = []
    /// How long starting them again took.
    var clientsStartMilliseconds = 0.0

    init(config: Config, recorder: StepRecorder, admin: ClusterAdmin) {
        self.config = config; self.recorder = recorder; self.admin = admin
    }

    var database: String { config.postgres.database }
    /// Whether a step of this name already ran.
    func did(_ step: String) -> Bool { recorder.steps.contains { $0.name == step } }
}
