import CSageSystem

/// pidfds let us wait for any process's exit (including ones we did not spawn) by polling an fd.
public enum Pidfd {
    /// A pidfd for `pid`, or -1 when the process is gone (or the kernel predates pidfds).
    public static func open(_ pid: Int32) -> Int32 { csage_pidfd_open(pid) }
}
