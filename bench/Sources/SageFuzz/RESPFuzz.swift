import SageWire

/// Random and mutated RESP2/RESP3 frames, and a driver that runs them through the incremental parser whole and
/// split at a random point, under standard and tight limits. Throwing a WireError is the expected answer to bad
/// bytes; feeding in two chunks must give the same answer as feeding whole.
public enum RESPFuzz {
    /// What the parser made of one input.
    public enum Outcome: Equatable, Sendable {
        case value(RESPValue, consumed: Int), incomplete, failed(WireError.Code)
        /// The parser broke a rule of its contract (threw something other than a WireError, consumed bytes of an
        /// incomplete frame, or produced a value from no bytes).
        case broken(String)

        /// NaN never equals itself, so two NaN doubles decoded from the same bytes still agree.
        public var isNaN: Bool { if case .value(let v, _) = self { return "\(v)".contains("nan") } else { return false } }
    }

    public static let typeBytes = Array("+-:$*_%~,#(!=>|.;?".utf8)
    /// Limits small enough that generated frames cross them often.
    public static let tightLimits = RESPLimits(maxBulkLength: 64, maxAggregateCount: 8, maxDepth: 5, maxLineLength: 64)

    public static func text(_ r: inout SeededRandom, maxLength: Int = 12) -> String {
        let alphabet = Array("abcXYZ019 _-:é".unicodeScalars)
        return String(String.UnicodeScalarView((0..<r.below(maxLength + 1)).map { _ in alphabet[r.below(alphabet.count)] }))
    }

    /// A random well-formed value, up to four levels deep (no NaN, so values compare equal after a round trip).
    public static func value(_ r: inout SeededRandom, depth: Int = 0) -> RESPValue {
        switch r.below(depth >= 4 ? 10 : 15) {
        case 0: return .simpleString(text(&r))
        case 1: return .error("ERR " + text(&r))
        case 2: return .integer(Int64(bitPattern: r.next()) >> r.below(64))
        case 3: return .bulkString((0..<r.below(40)).map { _ in UInt8(truncatingIfNeeded: r.next()) })
        case 4: return .null
        case 5: return .double(Double(Int64(bitPattern: r.next()) >> 20) / Double(1 << r.below(30)))
        case 6: return .boolean(r.chance(50))
        case 7: return .bigNumber((r.chance(30) ? "-" : "") + String(r.next()) + String(r.next()))
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

    /// Flips, inserts, deletes or duplicates bytes; swaps in type bytes, digits, CRLF and huge lengths where they hurt most.
    public static func mutate(_ input: [UInt8], _ r: inout SeededRandom) -> [UInt8] {
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

    /// Up to 63 bytes, mostly type bytes, digits, CR and LF.
    public static func random(_ r: inout SeededRandom) -> [UInt8] {
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

    /// Parses `b` in one piece.
    public static func parseWhole(_ b: [UInt8], _ limits: RESPLimits) -> Outcome {
        var s = b[...]
        do {
            guard let v = try RESPParser(limits: limits).parse(from: &s) else {
                return s.count == b.count ? .incomplete : .broken("incomplete input was consumed")
            }
            return s.count < b.count ? .value(v, consumed: b.count - s.count) : .broken("a value was decoded from no bytes")
        } catch let e as WireError {
            return .failed(e.code)
        } catch {
            return .broken("an error that is not a WireError: \(error)")
        }
    }

    /// Feeds `b` in two chunks, split at `split`, asking for a value after each.
    public static func parseChunked(_ b: [UInt8], _ limits: RESPLimits, split: Int) -> Outcome {
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
            return .broken("an error that is not a WireError: \(error)")
        }
    }

    /// Runs `iterations` inputs: a quarter random bytes, a quarter valid frames, half mutated frames.
    public static func run(iterations: Int, seed: UInt64) -> FuzzStats {
        var rng = SeededRandom(seed: seed)
        var stats = FuzzStats()
        for iteration in 0..<iterations {
            let input: [UInt8]
            switch iteration % 4 {
            case 0: input = random(&rng)
            case 1: input = RESPEncoder.encode(value(&rng))
            default: input = mutate(RESPEncoder.encode(value(&rng)), &rng)
            }
            stats.iterations += 1
            stats.bytes += input.count
            let limits = rng.below(2) == 0 ? tightLimits : .standard
            let whole = parseWhole(input, limits)
            let split = rng.below(input.count + 1)
            let chunked = parseChunked(input, limits, split: split)
            for case .broken(let why) in [whole, chunked] {
                stats.bug("seed \(seed) iteration \(iteration): \(why) for \(input)")
            }
            if whole != chunked && !(whole.isNaN && chunked.isNaN) {
                stats.bug("seed \(seed) iteration \(iteration): whole \(whole) vs split at \(split) \(chunked) for \(input)")
            }
            if iteration % 4 == 1, case .value(_, let consumed) = whole, consumed != input.count {
                stats.bug("seed \(seed) iteration \(iteration): a valid frame did not decode whole (\(consumed) of \(input.count) bytes)")
            }
            switch whole {
            case .value: stats.decoded += 1
            case .failed: stats.rejected += 1
            case .incomplete: stats.incomplete += 1
            case .broken: break
            }
        }
        return stats
    }
}
