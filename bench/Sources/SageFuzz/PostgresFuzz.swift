import SageWire

/// Builds backend frames by hand, byte by byte, the way a PostgreSQL server lays them out.
public enum PostgresFrames {
    public static func int32(_ v: Int32) -> [UInt8] { var o = [UInt8](); Bytes.appendInt32(v, to: &o); return o }
    public static func int16(_ v: Int16) -> [UInt8] { var o = [UInt8](); Bytes.appendInt16(v, to: &o); return o }
    public static func cstr(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }
    public static func frame(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        [type.asciiValue!] + int32(Int32(body.count + 4)) + body
    }

    public static func authOk() -> [UInt8] { frame("R", int32(0)) }
    public static func authCleartext() -> [UInt8] { frame("R", int32(3)) }
    public static func authMD5(_ salt: [UInt8]) -> [UInt8] { frame("R", int32(5) + salt) }
    public static func authSASL(_ mechanisms: [String]) -> [UInt8] { frame("R", int32(10) + mechanisms.flatMap(cstr) + [0]) }
    public static func authSASLContinue(_ data: String) -> [UInt8] { frame("R", int32(11) + Array(data.utf8)) }
    public static func authSASLFinal(_ data: String) -> [UInt8] { frame("R", int32(12) + Array(data.utf8)) }
    public static func parameterStatus(_ name: String, _ value: String) -> [UInt8] { frame("S", cstr(name) + cstr(value)) }
    public static func backendKey(_ pid: Int32, _ key: Int32) -> [UInt8] { frame("K", int32(pid) + int32(key)) }
    public static func readyForQuery(_ status: Character = "I") -> [UInt8] { frame("Z", [status.asciiValue!]) }
    public static func diagnosticBody(_ fields: [(Character, String)]) -> [UInt8] {
        fields.flatMap { [$0.0.asciiValue!] + cstr($0.1) } + [0]
    }
    public static func error(_ fields: [(Character, String)]) -> [UInt8] { frame("E", diagnosticBody(fields)) }
    public static func notice(_ fields: [(Character, String)]) -> [UInt8] { frame("N", diagnosticBody(fields)) }
    /// Every column an int4 of table 16384.
    public static func rowDescription(_ names: [String]) -> [UInt8] {
        var body = int16(Int16(names.count))
        for name in names {
            body += cstr(name)
            body += int32(16384)
            body += int16(1)
            body += int32(23)
            body += int16(4)
            body += int32(-1)
            body += int16(0)
        }
        return frame("T", body)
    }
    public static func dataRow(_ values: [String?]) -> [UInt8] {
        var body = int16(Int16(values.count))
        for value in values {
            if let value { body += int32(Int32(value.utf8.count)) + Array(value.utf8) } else { body += int32(-1) }
        }
        return frame("D", body)
    }
    public static func commandComplete(_ tag: String) -> [UInt8] { frame("C", cstr(tag)) }
    public static func emptyQuery() -> [UInt8] { frame("I", []) }
}

/// Random and mutated PostgreSQL backend streams, and a driver that runs them through the incremental decoder,
/// split at random points, feeding whatever decodes into a connection state machine. Throwing a WireError is the
/// expected answer to bad bytes; anything else, or a crash, is a bug.
public enum PostgresFuzz {
    /// One valid frame of every type the decoder knows.
    public static let frames: [[UInt8]] = {
        typealias F = PostgresFrames
        let diagnostic: [(Character, String)] = [("S", "ERROR"), ("V", "ERROR"), ("C", "42601"), ("M", "syntax error"), ("P", "1"), ("H", "hint"), ("W", "where")]
        return [
            F.authOk(), F.authCleartext(), F.authMD5([1, 2, 3, 4]), F.authSASL(["SCRAM-SHA-256"]),
            F.authSASLContinue("r=fuzzfuzzfuzzSERVER,s=c2FsdA==,i=4096"),
            F.authSASLFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            F.frame("R", F.int32(7)),
            F.parameterStatus("server_version", "18.1"), F.backendKey(42, 7),
            F.readyForQuery("I"), F.readyForQuery("T"), F.readyForQuery("E"),
            F.error(diagnostic), F.notice(diagnostic),
            F.rowDescription(["id"]), F.dataRow(["1", nil, ""]), F.commandComplete("SELECT 1"), F.emptyQuery(),
            F.frame("A", F.int32(1) + F.cstr("ch") + F.cstr("payload")), F.frame("v", F.int32(0) + F.int32(1) + F.cstr("_pq_.x")),
            F.frame("G", [UInt8(0)] + F.int16(1) + F.int16(0)), F.frame("H", [UInt8(0)] + F.int16(1) + F.int16(0)),
            F.frame("W", [UInt8(0)] + F.int16(0)),
            F.frame("d", Array("1\tx\n".utf8)), F.frame("c", []),
        ]
    }()

    /// One input, by iteration: noise, a frame with bytes flipped, several frames truncated or with junk appended,
    /// a frame whose length field is rewritten to something odd, or the head of one frame spliced to the tail of another.
    public static func input(iteration: Int, corpus: [[UInt8]], rng: inout SeededRandom) -> [UInt8] {
        var input: [UInt8]
        switch iteration % 5 {
        case 0:
            // Noise, with a plausible type byte half the time.
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

    /// Runs `iterations` streams built from `corpus` (every frame at least 5 bytes: a type and a length).
    public static func run(iterations: Int, seed: UInt64, corpus: [[UInt8]] = frames) -> FuzzStats {
        var rng = SeededRandom(seed: seed)
        var stats = FuzzStats()
        for iteration in 0..<iterations {
            let input = input(iteration: iteration, corpus: corpus, rng: &rng)
            stats.iterations += 1
            stats.bytes += input.count
            var reader = PostgresMessageReader(decoder: PostgresBackendDecoder(atConnectionStart: iteration % 3 == 0))
            var machine = PostgresConnectionStateMachine(configuration: .init(user: "sage", database: "sage", password: "pw",
                                                                              scramClientNonce: "fuzzfuzzfuzz",
                                                                              scramSaltedPassword: { _, _, _ in [UInt8](repeating: 1, count: 32) }))
            _ = machine.start()
            if iteration % 5 == 0 {
                // Some of the time a machine that is already connected, so query-phase paths get exercised too.
                for m: PostgresBackendMessage in [.authentication(.ok), .readyForQuery(.idle)] { _ = machine.received(m) }
                _ = machine.query("SELECT 1")
            }
            var cuts = [0, input.count]
            for _ in 0..<Int.random(in: 0...3, using: &rng) where !input.isEmpty { cuts.append(Int.random(in: 0...input.count, using: &rng)) }
            cuts.sort()
            var rejected = false
            outer: for i in 0..<(cuts.count - 1) {
                reader.append(Array(input[cuts[i]..<cuts[i + 1]]))
                stats.largestBuffer = max(stats.largestBuffer, reader.bufferedByteCount)
                while true {
                    let message: PostgresBackendMessage?
                    do {
                        message = try reader.next()
                    } catch is WireError {
                        rejected = true
                        break outer
                    } catch {
                        stats.bug("seed \(seed) iteration \(iteration): an error that is not a WireError: \(error) for \(input)")
                        break outer
                    }
                    guard let message else { break }
                    stats.decoded += 1
                    if case .close = machine.received(message) { break outer }
                }
            }
            if rejected { stats.rejected += 1 } else if reader.bufferedByteCount > 0 { stats.incomplete += 1 }
        }
        return stats
    }
}
