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

    /// The session of the check that finds postgres ready after it started, for the database step that runs next.
    public let startupSession = StartupSession()

    /// The engine's probe for a service: postgres's switches to the maintenance database while an operation runs.
    /// While postgres starts (the recovery that follows is an operation too), it checks the app database, falling
    /// back to the maintenance database when the app's is missing or refuses connections, and hands the session
    /// of its first success to `startupSession`.
    public func probe(_ s: ServiceID, _ c: Config, normal: any Probe) -> any Probe {
        guard s == .postgres, let app = normal as? PostgresProbe else { return normal }
        return postgresProbe(app, maintenance: DatabaseEndpoint(config: c).maintenanceDatabase)
    }

    /// `app`: the check of the app database.
    func postgresProbe(_ app: PostgresProbe, maintenance: String) -> any Probe {
        var starting = app
        starting.fallbackDatabase = maintenance
        starting.keep = { [startupSession] in startupSession.offer($0) }
        return ActivityAwareProbe(activity: self, normal: app, duringWork: app.on(database: maintenance), starting: starting)
    }
}

struct ActivityAwareProbe: Probe {
    let activity: DatabaseActivity
    let normal: any Probe
    let duringWork: any Probe
    let starting: any Probe
    var target: String { normal.target }
    func check(deadline: Deadline) -> ProbeOutcome {
        guard activity.isBusy else { return normal.check(deadline: deadline) }
        return activity.startupSession.isArmed ? starting.check(deadline: deadline) : duringWork.check(deadline: deadline)
    }
}

/// A cold session costs a TCP connect, SCRAM, a new backend and its catalog caches: about 8 ms on a postgres that
/// has just started, which every warm `up` paid twice, once for the probe that found postgres ready and once for the
/// database step that follows. The probe's session is kept here instead and the step takes it.
///
/// Armed while postgres starts (at first, and each time it stops being healthy): the first successful check keeps
/// its session and disarms. It is taken once, by the database step or the recovery that runs when postgres is
/// healthy, and only while idle; any other operation, a re-arm or postgres stopping closes it (it is a session on
/// the app database, which a swap or a template copy needs without sessions).
public final class StartupSession: Sendable {
    private let armed = Locked(true)
    private let kept = IdleConnections<PostgresConnectOptions, PostgresConnection>(
        capacity: 1, isIdle: { $0.isIdle }, close: { $0.close() })

    public init() {}

    /// Postgres is starting: the next successful check's session is kept (one kept from before is closed).
    public func arm() {
        kept.closeAll()
        armed.withValue { $0 = true }
    }
    public var isArmed: Bool { armed.current }
    /// Postgres is healthy: checks keep no more sessions.
    public func disarm() { armed.withValue { $0 = false } }

    /// Keeps `connection` when armed (and disarms); false means the caller still owns it.
    func offer(_ connection: PostgresConnection) -> Bool {
        guard armed.withValue({ let was = $0; $0 = false; return was }) else { return false }
        kept.giveBack(connection, for: connection.options)
        return true
    }

    /// The kept session, if it is to `options` and idle; it is the caller's from then on.
    func take(_ options: PostgresConnectOptions) -> PostgresConnection? { kept.take(options) }

    public func close() { kept.closeAll() }
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
