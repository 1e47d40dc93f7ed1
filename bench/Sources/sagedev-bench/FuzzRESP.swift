import SageSystem
import SageWire

/// Runs `iterations` random and mutated RESP2/RESP3 frames through the incremental parser, whole and
/// split at a random point, under standard and tight limits. Any crash is a bug; throwing a WireError is
/// the expected answer to bad bytes; feeding in two chunks must give the same answer as feeding whole.
/// Prints one summary line (and one line per disagreement, which is a bug).
func fuzzRESPParser(iterations: Int, seed: UInt64) {
    var rng = RESPFuzzRandom(seed: seed)
    let tight = RESPLimits(maxBulkLength: 64, maxAggregateCount: 8, maxDepth: 5, maxLineLength: 64)
    var decoded = 0, rejected = 0, incomplete = 0, disagreements = 0, bytes = 0
    let start = monotonicNanoseconds()

    for iteration in 0..<iterations {
        let input: [UInt8]
        switch iteration % 4 {
        case 0: input = RESPFuzzCorpus.random(&rng)
        case 1: input = RESPEncoder.encode(RESPFuzzCorpus.value(&rng))
        default: input = RESPFuzzCorpus.mutate(RESPEncoder.encode(RESPFuzzCorpus.value(&rng)), &rng)
        }
        bytes += input.count
        let limits = rng.below(2) == 0 ? tight : .standard
        let whole = RESPFuzzCorpus.parseWhole(input, limits)
        let split = rng.below(input.count + 1)
        let chunked = RESPFuzzCorpus.parseChunked(input, limits, split: split)
        if whole != chunked && !(whole.isNaN && chunked.isNaN) {
            disagreements += 1
            if disagreements <= 5 { print("FAIL fuzz-resp seed \(seed) iteration \(iteration): whole \(whole) vs split at \(split) \(chunked)") }
        }
        if iteration % 4 == 1, case .value(_, let consumed) = whole, consumed != input.count {
            disagreements += 1
            if disagreements <= 5 { print("FAIL fuzz-resp seed \(seed) iteration \(iteration): a valid frame did not decode whole") }
        }
        switch whole {
        case .value: decoded += 1
        case .failed: rejected += 1
        case .incomplete: incomplete += 1
        }
    }
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    let rate = seconds > 0 ? Double(iterations) / seconds : 0
    print("fuzz-resp: \(iterations) frames (\(bytes) bytes), seed \(seed): \(decoded) decoded, \(rejected) rejected, \(incomplete) incomplete, \(disagreements) disagreements, \(Int(rate)) frames/s")
}

struct RESPFuzzRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}

enum RESPFuzzOutcome: Equatable {
    case value(RESPValue, consumed: Int), incomplete, failed(WireError.Code)
    var isNaN: Bool { if case .value(let v, _) = self { return "\(v)".contains("nan") } else { return false } }
}

enum RESPFuzzCorpus {
    static let typeBytes = Array("+-:$*_%~,#(!=>|.;?".utf8)

    static func text(_ r: inout RESPFuzzRandom) -> String {
        let alphabet = Array("abcXYZ019 _-:é".unicodeScalars)
        return String(String.UnicodeScalarView((0..<r.below(13)).map { _ in alphabet[r.below(alphabet.count)] }))
    }

    /// A random well-formed value, up to four levels deep.
    static func value(_ r: inout RESPFuzzRandom, depth: Int = 0) -> RESPValue {
        switch r.below(depth >= 4 ? 10 : 15) {
        case 0: return .simpleString(text(&r))
        case 1: return .error("ERR " + text(&r))
        case 2: return .integer(Int64(bitPattern: r.next()) >> r.below(64))
        case 3: return .bulkString((0..<r.below(40)).map { _ in UInt8(truncatingIfNeeded: r.next()) })
        case 4: return .null
        case 5: return .double(Double(Int64(bitPattern: r.next()) >> 20) / Double(1 << r.below(30)))
        case 6: return .boolean(r.below(2) == 0)
        case 7: return .bigNumber(String(r.next()) + String(r.next()))
        case 8: return .bulkError("SYNTAX " + text(&r))
        case 9: return .verbatimString(format: "txt", text: text(&r))
        case 10: return .array((0..<r.below(6)).map { _ in value(&r, depth: depth + 1) })
        case 11: return .set((0..<r.below(6)).map { _ in value(&r, depth: depth + 1) })
        case 12: return .push((0..<r.below(4)).map { _ in value(&r, depth: depth + 1) })
        case 13: return .map((0..<r.below(4)).map { _ in RESPPair(value(&r, depth: depth + 1), value(&r, depth: depth + 1)) })
        default:
            return .attribute((0..<r.below(3)).map { _ in RESPPair(value(&r, depth: depth + 1), value(&r, depth: depth + 1)) },
                              value(&r, depth: depth + 1))
        }
    }

    static func mutate(_ input: [UInt8], _ r: inout RESPFuzzRandom) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + r.below(4)) {
            let i = b.isEmpty ? 0 : r.below(b.count)
            switch r.below(9) {
            case 0 where !b.isEmpty: b[i] = UInt8(truncatingIfNeeded: r.next())
            case 1 where !b.isEmpty: b[i] ^= UInt8(1 << r.below(8))
            case 2: b.insert(typeBytes[r.below(typeBytes.count)], at: i)
            case 3 where !b.isEmpty: b.remove(at: i)
            case 4: b.insert(contentsOf: Array(String(r.next() >> r.below(64)).utf8), at: i)
            case 5: b.insert(contentsOf: [13, 10], at: i)
            case 6 where !b.isEmpty: b.insert(contentsOf: b[i..<min(b.count, i + r.below(16))], at: i)
            case 7: b.insert(contentsOf: Array("-1".utf8), at: i)
            case 8: b.insert(contentsOf: Array("$2147483648\r\n".utf8), at: i)
            default: b.append(UInt8(truncatingIfNeeded: r.next()))
            }
        }
        return b
    }

    static func random(_ r: inout RESPFuzzRandom) -> [UInt8] {
        (0..<r.below(64)).map { _ in
            switch r.below(10) {
            case 0..<4: return typeBytes[r.below(typeBytes.count)]
            case 4..<7: return UInt8(ascii: "0") + UInt8(r.below(10))
            case 7: return 13
            case 8: return 10
            default: return UInt8(truncatingIfNeeded: r.next())
            }
        }
    }

    static func parseWhole(_ b: [UInt8], _ limits: RESPLimits) -> RESPFuzzOutcome {
        var s = b[...]
        do {
            guard let v = try RESPParser(limits: limits).parse(from: &s) else {
                if s.count != b.count { print("FAIL fuzz-resp: incomplete input was consumed") }
                return .incomplete
            }
            return .value(v, consumed: b.count - s.count)
        } catch let e as WireError {
            return .failed(e.code)
        } catch {
            print("FAIL fuzz-resp: an error that is not a WireError: \(error)")
            return .failed(.unsupported)
        }
    }

    static func parseChunked(_ b: [UInt8], _ limits: RESPLimits, split: Int) -> RESPFuzzOutcome {
        var p = RESPParser(limits: limits)
        do {
            p.append(b[0..<split])
            if let v = try p.next() { return .value(v, consumed: split - p.bufferedByteCount) }
            p.append(b[split...])
            if let v = try p.next() { return .value(v, consumed: b.count - p.bufferedByteCount) }
            return .incomplete
        } catch let e as WireError {
            return .failed(e.code)
        } catch {
            return .failed(.unsupported)
        }
    }
}
