import Glibc
import Dispatch

/// Signals by name, sending them, and turning the ones a daemon handles into Dispatch events.
public enum Signals {
    public static let kill = SIGKILL
    public static let terminate = SIGTERM
    public static let interrupt = SIGINT
    public static let hangup = SIGHUP
    public static let quit = SIGQUIT

    /// Sends `signal` to one process (also one that is not our child, e.g. a daemon found through its lock file);
    /// false when it is gone or not ours to signal. A pid of 0 or below is refused: kill(2) would read it as a group.
    @discardableResult
    public static func send(_ signal: Int32, toProcess pid: Int32) -> Bool { pid > 0 && Glibc.kill(pid, signal) == 0 }

    /// Sends `signal` to every member of a process group (a group id of 0 or below is refused).
    @discardableResult
    public static func send(_ signal: Int32, toGroup group: Int32) -> Bool { group > 0 && Glibc.kill(-group, signal) == 0 }

    /// Stops `signals` from killing the process and calls `handler` on `queue` each time one arrives.
    /// Handling lasts as long as the returned watch is kept.
    public static func handle(_ signals: [Int32], queue: DispatchQueue,
                              _ handler: @escaping @Sendable (Int32) -> Void) -> SignalWatch {
        var sources: [DispatchSourceSignal] = []
        for sig in signals {
            Glibc.signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            src.setEventHandler { handler(sig) }
            src.resume()
            sources.append(src)
        }
        return SignalWatch(sources)
    }
}

/// The Dispatch sources of `Signals.handle`; `cancel` stops delivering (the signals stay ignored).
public final class SignalWatch: @unchecked Sendable {
    private let sources: [DispatchSourceSignal]
    init(_ sources: [DispatchSourceSignal]) { self.sources = sources }
    public func cancel() { for s in sources { s.cancel() } }
}

/// CPU time, from getrusage(2).
public enum ResourceUsage {
    /// User plus system CPU seconds of this process, or of its reaped children.
    public static func cpuSeconds(children: Bool = false) -> Double {
        var u = rusage()
        getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }
}
