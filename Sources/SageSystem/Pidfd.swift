import Glibc
import CSageSystem

/// pidfds let us wait for any process's exit (including ones we did not spawn) by polling an fd.
public enum Pidfd {
    /// A pidfd for `pid`, or -1 when the process is gone (or the kernel predates pidfds).
    public static func open(_ pid: Int32) -> Int32 { csage_pidfd_open(pid) }

    /// Waits until the process behind `pidfd` has exited or the deadline passes; true when it exited.
    public static func waitForExit(_ pidfd: Int32, deadline: Deadline) -> Bool {
        FileDescriptor.waitReadable(pidfd, deadline: deadline)
    }

    /// Reaps `pid` if it is an exited child of ours (so it leaves no zombie); does nothing otherwise.
    public static func reapIfExited(_ pid: Int32) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }
}
