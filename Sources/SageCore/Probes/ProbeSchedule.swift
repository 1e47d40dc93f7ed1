/// When to check a target again while it refuses connections or answers "not ready yet".
///
/// The pause starts at ~10 ms, so that a server which comes up during the first seconds is seen
/// within a few ms, and eases (cubically) to ~250 ms at 5 s, so that a slow start costs little. (At 3 ms, a
/// postgres doing crash recovery under load got a new connection, and a forked backend, every few ms.)
/// A pure value: the waiter asks it for the pause after each attempt.
public struct ProbeSchedule: Sendable, Equatable {
    public var initialIntervalMilliseconds: Double
    public var maximumIntervalMilliseconds: Double
    /// Time since the wait began at which the pause reaches its maximum.
    public var rampMilliseconds: Double

    public init(initialIntervalMilliseconds: Double = 10, maximumIntervalMilliseconds: Double = 250,
                rampMilliseconds: Double = 5000) {
        self.initialIntervalMilliseconds = max(1, initialIntervalMilliseconds)
        self.maximumIntervalMilliseconds = max(self.initialIntervalMilliseconds, maximumIntervalMilliseconds)
        self.rampMilliseconds = max(1, rampMilliseconds)
    }

    /// The pause before the next check, given how long the wait has been going.
    public func interval(afterMilliseconds elapsed: Double) -> Double {
        let t = min(max(elapsed / rampMilliseconds, 0), 1)
        return initialIntervalMilliseconds + (maximumIntervalMilliseconds - initialIntervalMilliseconds) * t * t * t
    }

    /// The times (ms since the start) at which checks would begin if each check took no time.
    public func checkTimes(upTo limit: Double) -> [Double] {
        var times: [Double] = []
        var t = 0.0
        while t <= limit {
            times.append(t)
            t += interval(afterMilliseconds: t)
        }
        return times
    }
}
