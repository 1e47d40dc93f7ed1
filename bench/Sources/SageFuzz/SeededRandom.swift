/// SplitMix64: small, fast and deterministic, so a failing fuzz case can be replayed from its seed and iteration.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<n (0 when n < 1).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }

    /// True `percent` times in a hundred.
    public mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// What a fuzz run did. Any `bugs` entry is a defect in the decoder under test; the counts show how much of the
/// decoder the run reached (a corpus that never reaches a path proves little about it).
public struct FuzzStats: Sendable, Equatable {
    public var iterations = 0
    /// Bytes of input generated.
    public var bytes = 0
    /// RESP: inputs that decoded to a value. PostgreSQL: messages decoded.
    public var decoded = 0
    /// Inputs (RESP) or streams (PostgreSQL) the decoder refused with a WireError.
    public var rejected = 0
    /// RESP: inputs the parser needed more bytes for. PostgreSQL: streams that ended with bytes still buffered.
    public var incomplete = 0
    /// The most bytes a decoder held buffered at once.
    public var largestBuffer = 0
    /// How many defects the run found, and the first few, described with seed and iteration so they can be replayed.
    public var bugCount = 0
    public var bugs: [String] = []

    public init() {}

    /// Inputs or streams that were not refused.
    public var accepted: Int { iterations - rejected }

    static let bugsKept = 5

    mutating func bug(_ description: @autoclosure () -> String) {
        bugCount += 1
        if bugs.count < Self.bugsKept { bugs.append(description()) }
    }
}
