import Testing
@testable import SageWire

/// SplitMix64: small, fast and reproducible from a seed printed on failure.
struct FuzzRandom {
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
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

enum RESPFuzzCorpus {
    static let typeBytes = Array("+-:$*_%~,#(!=>|.;?".utf8)

    static func text(_ r: inout FuzzRandom, maxLength: Int = 12) -> String {
        let alphabet = Array("abcXYZ019 _-:é".unicodeScalars)
        return String(String.UnicodeScalarView((0..<r.below(maxLength + 1)).map { _ in alphabet[r.below(alphabet.count)] }))
    }

    /// A random well-formed value (no NaN, so values compare equal after a round trip).
    static func value(_ r: inout FuzzRandom, depth: Int = 0) -> RESPValue {
        let leafOnly = depth >= 4
        switch r.below(leafOnly ? 10 : 15) {
        case 0: return .simpleString(text(&r))
        case 1: return .error("ERR " + text(&r))
        case 2: return .integer(Int64(bitPattern: r.next()) >> r.below(64))
        case 3: return .bulkString((0..<r.below(20)).map { _ in UInt8(truncatingIfNeeded: r.next()) })
        case 4: return .null
        case 5: return .double(Double(Int64(bitPattern: r.next()) >> 20) / Double(1 << r.below(30)))
        case 6: return .boolean(r.chance(50))
        case 7: return .bigNumber((r.chance(30) ? "-" : "") + String(r.next()) + String(r.next()))
        case 8: return .bulkError("SYNTAX " + text(&r))
        case 9: return .verbatimString(format: "txt", text: text(&r))
        case 10: return .array((0..<r.below(5)).map { _ in value(&r, depth: depth + 1) })
        case 11: return .set((0..<r.below(5)).map { _ in value(&r, depth: depth + 1) })
        case 12: return .push((0..<r.below(4)).map { _ in value(&r, depth: depth + 1) })
        case 13: return .map((0..<r.below(4)).map { _ in RESPPair(value(&r, depth: depth + 1), value(&r, depth: depth + 1)) })
        default:
            return .attribute((0..<r.below(3)).map { _ in RESPPair(value(&r, depth: depth + 1), value(&r, depth: depth + 1)) },
                              value(&r, depth: depth + 1))
        }
    }

    /// Flips, inserts, deletes or duplicates bytes; swaps in type bytes and digits where they hurt most.
    static func mutate(_ input: [UInt8], _ r: inout FuzzRandom) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + r.below(4)) {
            let i = b.isEmpty ? 0 : r.below(b.count)
            switch r.below(8) {
            case 0 where !b.isEmpty: b[i] = UInt8(truncatingIfNeeded: r.next())
            case 1 where !b.isEmpty: b[i] ^= UInt8(1 << r.below(8))
            case 2: b.insert(typeBytes[r.below(typeBytes.count)], at: i)
            case 3 where !b.isEmpty: b.remove(at: i)
            case 4: b.insert(contentsOf: Array(String(r.next() >> r.below(64)).utf8), at: i)
            case 5: b.insert(contentsOf: [13, 10], at: i)
            case 6 where !b.isEmpty: b.insert(contentsOf: b[i..<min(b.count, i + r.below(16))], at: i)
            case 7: b.insert(contentsOf: Array("-1".utf8), at: i)
            default: b.append(UInt8(truncatingIfNeeded: r.next()))
            }
        }
        return b
    }

    static func random(_ r: inout FuzzRandom) -> [UInt8] {
        (0..<r.below(48)).map { _ in
            r.chance(40) ? typeBytes[r.below(typeBytes.count)] : (r.chance(50) ? UInt8(ascii: "0") + UInt8(r.below(10)) : (r.chance(50) ? 13 : 10))
        }
    }
}

enum ParseResult: Equatable {
    case value(RESPValue, consumed: Int), incomplete, failed(WireError.Code)
}

private func wholeParse(_ b: [UInt8], _ limits: RESPLimits) -> ParseResult {
    var s = b[...]
    do {
        guard let v = try RESPParser(limits: limits).parse(from: &s) else {
            #expect(s.count == b.count, "incomplete input was consumed")
            return .incomplete
        }
        #expect(s.count < b.count)
        return .value(v, consumed: b.count - s.count)
    } catch let e as WireError {
        return .failed(e.code)
    } catch {
        Issue.record("non-WireError \(error)")
        return .failed(.unsupported)
    }
}

private func chunkedParse(_ b: [UInt8], _ limits: RESPLimits, split: Int) -> ParseResult {
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
        Issue.record("non-WireError \(error)")
        return .failed(.unsupported)
    }
}

@Suite struct RESPFuzzTests {
    static let tight = RESPLimits(maxBulkLength: 64, maxAggregateCount: 8, maxDepth: 5, maxLineLength: 64)

    /// 200k random and mutated frames: no crash, and feeding in two chunks always agrees with feeding whole.
    @Test(arguments: [UInt64(0x5A6E_DE7), 0xC0FFEE])
    func randomAndMutatedFramesNeverCrashAndAgreeAcrossSplits(seed: UInt64) {
        var r = FuzzRandom(seed: seed)
        var decoded = 0, failed = 0, incomplete = 0
        for iteration in 0..<100_000 {
            let input: [UInt8]
            switch iteration % 3 {
            case 0: input = RESPFuzzCorpus.random(&r)
            default: input = RESPFuzzCorpus.mutate(RESPEncoder.encode(RESPFuzzCorpus.value(&r)), &r)
            }
            let limits = r.chance(50) ? Self.tight : .standard
            let whole = wholeParse(input, limits)
            let split = input.isEmpty ? 0 : r.below(input.count + 1)
            let chunked = chunkedParse(input, limits, split: split)
            if whole != chunked && !(isNaNValue(whole) && isNaNValue(chunked)) {
                Issue.record("seed \(seed) iteration \(iteration): whole \(whole) vs split at \(split) \(chunked) for \(input)")
                return
            }
            switch whole {
            case .value: decoded += 1
            case .failed: failed += 1
            case .incomplete: incomplete += 1
            }
        }
        // The corpus must exercise all three paths, or the fuzzer proves little.
        #expect(decoded > 1000 && failed > 1000 && incomplete > 1000, "decoded \(decoded) failed \(failed) incomplete \(incomplete)")
    }

    @Test func generatedValuesRoundTripAtEverySplitOfTheirEncoding() throws {
        var r = FuzzRandom(seed: 42)
        for _ in 0..<2_000 {
            let v = RESPFuzzCorpus.value(&r)
            let wire = RESPEncoder.encode(v)
            #expect(wholeParse(wire, .standard) == .value(v, consumed: wire.count))
            for split in stride(from: 0, through: wire.count, by: max(1, wire.count / 16)) {
                #expect(chunkedParse(wire, .standard, split: split) == .value(v, consumed: wire.count))
            }
        }
    }

    private func isNaNValue(_ r: ParseResult) -> Bool {
        if case .value(let v, _) = r { return "\(v)".contains("nan") }
        return false
    }
}
