import Glibc

/// A point on the monotonic clock. Every blocking call in sagedev takes one.
public struct Deadline: Sendable, Comparable, Hashable {
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func now() -> Deadline { Deadline(nanoseconds: monotonicNanoseconds()) }
    public static func after(milliseconds ms: Int) -> Deadline {
        Deadline(nanoseconds: monotonicNanoseconds() &+ UInt64(max(0, ms)) &* 1_000_000)
    }
    public static func after(seconds s: Double) -> Deadline {
        Deadline(nanoseconds: monotonicNanoseconds() &+ UInt64(max(0, s) * 1e9))
    }
    public static let distantFuture = Deadline(nanoseconds: UInt64.max / 2)

    /// Milliseconds left, rounded up so that a poll never wakes just before the deadline and spins; 0 when passed.
    public var remainingMilliseconds: Int32 {
        let now = monotonicNanoseconds()
        if nanoseconds <= now { return 0 }
        let ms = (nanoseconds - now + 999_999) / 1_000_000
        return ms > UInt64(Int32.max) ? Int32.max : Int32(ms)
    }
    public var hasPassed: Bool { monotonicNanoseconds() >= nanoseconds }
    public func earlier(_ other: Deadline) -> Deadline { self < other ? self : other }

    /// Sleeps this thread until the deadline (a timed wait in poll, for pacing retries; never to synchronise).
    public func wait() {
        while !hasPassed {
            var p = pollfd(fd: -1, events: 0, revents: 0)
            _ = poll(&p, 0, remainingMilliseconds)
        }
    }

    public static func < (a: Deadline, b: Deadline) -> Bool { a.nanoseconds < b.nanoseconds }
}

public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Milliseconds since `start` (from `monotonicNanoseconds()`), as a Double for reporting.
public func millisecondsSince(_ start: UInt64) -> Double {
    Double(monotonicNanoseconds() &- start) / 1e6
}

/// Wall-clock seconds since the epoch, for timestamps people read.
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
