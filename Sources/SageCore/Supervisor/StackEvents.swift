import SageSystem

/// A moment as the stack machine sees it: monotonic nanoseconds (for every duration) and the wall clock (for the
/// timestamps people read). The shell reads the clocks; tests build instants with a manual clock.
public struct Instant: Sendable, Equatable {
    public var nanoseconds: UInt64
    public var wallSeconds: Double
    public init(nanoseconds: UInt64, wallSeconds: Double) { self.nanoseconds = nanoseconds; self.wallSeconds = wallSeconds }

    public func adding(seconds: Double) -> Instant {
        Instant(nanoseconds: nanoseconds &+ UInt64(max(0, seconds) * 1e9), wallSeconds: wallSeconds + max(0, seconds))
    }
    public func seconds(since earlier: UInt64) -> Double {
        nanoseconds >= earlier ? Double(nanoseconds - earlier) / 1e9 : 0
    }
    public func milliseconds(since earlier: Instant) -> Double { seconds(since: earlier.nanoseconds) * 1000 }
    /// The wall-clock time of an earlier monotonic reading.
    public func wallSeconds(at monotonic: UInt64) -> Double { wallSeconds - seconds(since: monotonic) }
}

/// What the engine tells the people watching (the `up` progress lines, `logs -f`).
public enum EngineNotice: Sendable, Equatable {
    case changed(ServiceID, ServiceState, reason: String, elapsedMilliseconds: Int)
    case step(String, String)  // (name, message) e.g. ("database", "applied 3 migrations in 41 ms")
}

/// The last reload of a service, for `status`.
public struct ReloadRecord: Sendable, Equatable {
    public var file: String
    public var at: Double              // wall clock of the change
    public var action: String          // "self", "restart", "install+restart"
    public var healthyMilliseconds: Int?
    public var outcome: String         // "reloading", "reloaded", "crashed", "failed: …"
    public var count: Int
}

/// What someone asked of the stack (the CLI through the daemon, the watcher, a database operation).
public enum StackCommand: Sendable, Equatable {
    /// Run these services and what they depend on.
    case up([ServiceID])
    /// Stop these services, dependents first.
    case stop([ServiceID])
    /// Stop, then start again with a fresh supervisor (a `failed` service gets a new chance). `afterFileChange`:
    /// the start is a reload (a broken change then waits for the next save instead of looping).
    case restart([ServiceID], afterFileChange: Bool)
    /// A source file of a self-reloading service changed (`changedAt`: monotonic, when the change was seen).
    /// `restartMarker`: the runtime's restart marker read just after the change (nil when it cannot tell).
    case reloadTriggered(ServiceID, file: String, changedAt: UInt64, restartMarker: String?)
    /// A change for a service in restart mode (or after an install): restart it, timed from the change.
    case restartForReload(ServiceID, file: String, action: String, changedAt: UInt64)
    /// An install command after a manifest change ended: restart on success, report the failure otherwise.
    case installFinished(ServiceID, file: String, changedAt: UInt64, failure: String?)
    /// A reload that failed before any restart (e.g. an invalid `.env`).
    case reloadFailed(ServiceID, file: String, action: String, reason: String)
    /// An app's compiler reported a build in its log: its first error line, or nil when the build succeeded.
    case buildReported(ServiceID, error: String?, errors: Int)
    /// Run a job again (a migration changed) while its dependents keep running.
    case rerunJob(ServiceID, reason: String)
    /// A valid new configuration (after a `.env` change); restarts are separate commands.
    case replaceConfig(Config)
}

/// How a job ended.
public enum JobResult: Sendable, Equatable {
    /// Exit 0, with the steps it reports (e.g. "applied 3 migrations in 41 ms").
    case succeeded([String])
    case failed(String)
}

/// What the machine asks the shell to wake it for.
public enum TimerToken: Sendable, Hashable {
    /// The crash backoff has elapsed.
    case restartDelay(ServiceID, generation: Int)
    /// The start deadline, or the time a self-reload may take.
    case deadline(ServiceID, generation: Int)
}

/// What happened (past tense). Results carry the generation of the action that asked for them; an answer for an
/// older generation (the service moved on meanwhile) is dropped.
public enum StackEvent: Sendable, Equatable {
    case commandReceived(StackCommand)
    /// Services a previous daemon left running were found.
    case adopted([ServiceID: RunningService])
    case processStarted(ServiceID, generation: Int, RunningService)
    case processStartFailed(ServiceID, generation: Int, String)
    case processExited(ServiceID, ExitStatus)
    /// A stop the machine asked for has finished: the service's processes are gone.
    case stopFinished(ServiceID, failure: String?)
    /// `restartMarker` is read after the probe when the action asked for it.
    case probed(ServiceID, generation: Int, ProbeOutcome, latencyMilliseconds: Double, restartMarker: String?)
    case timerFired(TimerToken)
    case jobFinished(ServiceID, generation: Int, JobResult)
}

/// What the shell must do (imperative). The shell reads the configuration for an action from the machine when it
/// carries the action out, on the machine's queue: a snapshot, never a later value.
public enum StackAction: Sendable, Equatable {
    /// Check the service's port, then start it; report `processStarted` or `processStartFailed`.
    case spawn(ServiceID, generation: Int)
    /// Stop the service gracefully; report `stopFinished`.
    case stop(ServiceID)
    /// Probe after a pause; report `probed`. `readRestartMarker`: also read the runtime's restart marker.
    /// `wakeOnOutput`: a readiness probe, which runs before its pause is over when the service writes a line
    /// (a server says it is ready in its log: "ready to accept connections", "listening on").
    case probe(ServiceID, generation: Int, afterSeconds: Double, readRestartMarker: Bool, wakeOnOutput: Bool = false)
    /// Run a one-shot job; report `jobFinished`.
    case runJob(ServiceID, generation: Int, JobSpec)
    /// Report `timerFired(token)` after this long.
    case scheduleTimer(TimerToken, afterSeconds: Double)
    /// Tell the observers.
    case notify(EngineNotice)
    /// Append a line to a service's log.
    case log(String, String)

    /// Telling the observers, which the shell does after the work the same event asked for.
    public var isNotice: Bool { if case .notify = self { return true } else { return false } }
}

/// The last failed build of an app's compiler (tsc under a Nest-style dev command), until a build succeeds.
public struct BuildError: Sendable, Equatable {
    public var message: String
    public var errors: Int
    public var at: Double  // wall clock
}
