import SageSystem
import SageWire

/// Runs `iterations` random and mutated PostgreSQL backend streams through the incremental decoder, split at
/// random points, and feeds whatever decodes into a connection state machine. Any crash is a bug; throwing
/// a WireError is the expected answer to bad bytes. Prints one summary line.
func fuzzPostgresDecoder(iterations: Int, seed: UInt64) {
    var rng = PostgresFuzzRandom(seed: seed)
    let corpus = PostgresFuzzCorpus.frames
    var decodedMessages = 0, rejectedStreams = 0, acceptedStreams = 0, maxBuffered = 0
    let start = monotonicNanoseconds()

    for iteration in 0..<iterations {
        let input = PostgresFuzzCorpus.input(iteration: iteration, corpus: corpus, rng: &rng)
        var reader = PostgresMessageReader(decoder: PostgresBackendDecoder(atConnectionStart: iteration % 3 == 0))
        var machine = PostgresConnectionStateMachine(configuration: .init(user: "sage", database: "sage", password: "pw",
                                                                          scramClientNonce: "fuzzfuzzfuzz",
                                                                          scramSaltedPassword: { _, _, _ in [UInt8](repeating: 1, count: 32) }))
        _ = machine.start()
        if iteration % 5 == 0 {
            // Half the time, a machine that is already connected, so query-phase paths get exercised too.
            for m: PostgresBackendMessage in [.authentication(.ok), .readyForQuery(.idle)] { _ = machine.received(m) }
            _ = machine.query("SELECT 1")
        }
        var cuts = [0, input.count]
        for _ in 0..<Int.random(in: 0...3, using: &rng) where !input.isEmpty { cuts.append(Int.random(in: 0...input.count, using: &rng)) }
        cuts.sort()
        var failed = false
        outer: for i in 0..<(cuts.count - 1) {
            reader.append(Array(input[cuts[i]..<cuts[i + 1]]))
            maxBuffered = max(maxBuffered, reader.bufferedByteCount)
            while true {
                let message: PostgresBackendMessage?
                do { message = try reader.next() } catch { failed = true; break outer }
                guard let message else { break }
                decodedMessages += 1
                if case .close = machine.received(message) { break outer }
            }
        }
        if failed { rejectedStreams += 1 } else { acceptedStreams += 1 }
    }
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    print("fuzz postgres: \(iterations) streams (seed \(seed)) in \(format3(seconds)) s: \(decodedMessages) messages decoded, \(rejectedStreams) streams rejected, \(acceptedStreams) accepted or short, largest buffer \(maxBuffered) bytes, no crash")
}

private func format3(_ x: Double) -> String {
    let ms = Int((x * 1000).rounded())
    let frac = ms % 1000
    return "\(ms / 1000).\(frac < 10 ? "00" : frac < 100 ? "0" : "")\(frac)"
}

/// SplitMix64: deterministic, so a crash can be replayed from the seed and iteration.
struct PostgresFuzzRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum PostgresFuzzCorpus {
    static func int32(_ v: Int32) -> [UInt8] { var o = [UInt8](); Bytes.appendInt32(v, to: &o); return o }
    static func int16(_ v: Int16) -> [UInt8] { var o = [UInt8](); Bytes.appendInt16(v, to: &o); return o }
    static func cstr(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }
    static func frame(_ type: Character, _ body: [UInt8]) -> [UInt8] { [type.asciiValue!] + int32(Int32(body.count + 4)) + body }

    /// One valid frame of every type the decoder knows.
    static let frames: [[UInt8]] = {
        var column = cstr("id")
        column += int32(16384); column += int16(1); column += int32(23); column += int16(4); column += int32(-1); column += int16(0)
        var row = int16(3)
        row += int32(1) + [UInt8(ascii: "1")]; row += int32(-1); row += int32(0)
        let fields: [(String, String)] = [("S", "ERROR"), ("V", "ERROR"), ("C", "42601"), ("M", "syntax error"), ("P", "1"), ("H", "hint"), ("W", "where")]
        let diagnostic: [UInt8] = fields.flatMap { (k, v) -> [UInt8] in Array(k.utf8) + cstr(v) } + [0]
        return [
            frame("R", int32(0)), frame("R", int32(3)), frame("R", int32(5) + [1, 2, 3, 4]),
            frame("R", int32(10) + cstr("SCRAM-SHA-256") + [0]),
            frame("R", int32(11) + Array("r=fuzzfuzzfuzzSERVER,s=c2FsdA==,i=4096".utf8)),
            frame("R", int32(12) + Array("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".utf8)),
            frame("R", int32(7)),
            frame("S", cstr("server_version") + cstr("18.1")), frame("K", int32(42) + int32(7)),
            frame("Z", [UInt8(ascii: "I")]), frame("Z", [UInt8(ascii: "T")]), frame("Z", [UInt8(ascii: "E")]),
            frame("E", diagnostic), frame("N", diagnostic),
            frame("T", int16(1) + column), frame("D", row), frame("C", cstr("SELECT 1")), frame("I", []),
            frame("A", int32(1) + cstr("ch") + cstr("payload")), frame("v", int32(0) + int32(1) + cstr("_pq_.x")),
            frame("G", [UInt8(0)] + int16(1) + int16(0)), frame("H", [UInt8(0)] + int16(1) + int16(0)), frame("W", [UInt8(0)] + int16(0)),
            frame("d", Array("1\tx\n".utf8)), frame("c", []),
        ]
    }()

    static func input(iteration: Int, corpus: [[UInt8]], rng: inout PostgresFuzzRandom) -> [UInt8] {
        var input: [UInt8]
        switch iteration % 5 {
        case 0:
            let n = Int.random(in: 0...64, using: &rng)
            input = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if !input.isEmpty && Bool.random(using: &rng) { input[0] = corpus.randomElement(using: &rng)![0] }
        case 1:
            input = corpus.randomElement(using: &rng)!
            for _ in 0...Int.random(in: 0...4, using: &rng) {
                input[Int.random(in: 0..<input.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
        case 2:
            input = (0..<Int.random(in: 1...8, using: &rng)).flatMap { _ in corpus.randomElement(using: &rng)! }
            if Bool.random(using: &rng) { input.removeLast(Int.random(in: 0...input.count, using: &rng)) }
            else { input += (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        case 3:
            input = corpus.randomElement(using: &rng)!
            let lengths: [UInt32] = [0, 1, 3, 4, 5, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x0400_0000, 0x0400_0001,
                                     UInt32.random(in: 0...300, using: &rng)]
            let l = lengths.randomElement(using: &rng)!
            input[1] = UInt8(truncatingIfNeeded: l >> 24); input[2] = UInt8(truncatingIfNeeded: l >> 16)
            input[3] = UInt8(truncatingIfNeeded: l >> 8); input[4] = UInt8(truncatingIfNeeded: l)
        default:
            // Splice: the head of one frame glued to the tail of another, and a byte inserted or deleted.
            let a = corpus.randomElement(using: &rng)!, b = corpus.randomElement(using: &rng)!
            input = Array(a.prefix(Int.random(in: 0...a.count, using: &rng))) + Array(b.suffix(Int.random(in: 0...b.count, using: &rng)))
            if !input.isEmpty {
                if Bool.random(using: &rng) { input.remove(at: Int.random(in: 0..<input.count, using: &rng)) }
                else { input.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...input.count, using: &rng)) }
            }
        }
        return input
    }
}
