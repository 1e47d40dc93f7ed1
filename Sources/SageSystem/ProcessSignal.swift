import Glibc

/// Signals to a process that is not our child (a daemon found through its lock file).
public enum ProcessSignal {
    /// Asks the process to stop (SIGTERM). False when it is gone or not ours.
    @discardableResult
    public static func terminate(pid: Int32) -> Bool { pid > 0 && kill(pid, SIGTERM) == 0 }
}
