import SageSystem

/// Whether a database operation (reset, restore, migrate, the template copy) is under way in this process.
/// Meanwhile the app database may be missing for a moment or busy being copied, which says nothing about the
/// server's health: postgres's probe then checks the server through the maintenance database instead, so that
/// a reset never looks like a postgres failure (and never gets postgres restarted).
public final class DatabaseActivity: Sendable {
    private let count = Locked(0)
    private let ended = Locked(0)
    public init() {}

    public var isBusy: Bool { count.current > 0 }
    /// How many operations have ended: what they changed (ready copies, clones) is read again after one.
    public var completed: Int { ended.current }
    func begin() { count.withValue { $0 += 1 } }
    func end() { count.withValue { $0 = max(0, $0 - 1) }; ended.withValue { $0 += 1 } }

    /// The engine's probe for a service: postgres's switches to the maintenance database while an operation runs.
    public func probe(_ s: ServiceID, _ c: Config, normal: any Probe) -> any Probe {
        guard s == .postgres else { return normal }
        var m = c
        m.postgres.database = DatabaseEndpoint(config: c).maintenanceDatabase
        return ActivityAwareProbe(activity: self, normal: normal, duringWork: Stack.probe(.postgres, m))
    }
}

struct ActivityAwareProbe: Probe {
    let activity: DatabaseActivity
    let normal: any Probe
    let duringWork: any Probe
    var target: String { normal.target }
    func check(deadline: Deadline) -> ProbeOutcome {
        activity.isBusy ? duringWork.check(deadline: deadline) : normal.check(deadline: deadline)
    }
}

/// The cross-process lock on `.sagedev/run/reset.lock`, marking this process's activity while held.
final class OperationLock: @unchecked Sendable {
    private let lock: FileLock
    private let activity: DatabaseActivity?
    private let released = Locked(false)

    init(_ lock: FileLock, activity: DatabaseActivity?) {
        self.lock = lock; self.activity = activity
        activity?.begin()
    }
    deinit { release() }

    func release() {
        guard released.withValue({ let was = $0; $0 = true; return !was }) else { return }
        lock.release()
        activity?.end()
    }
}
