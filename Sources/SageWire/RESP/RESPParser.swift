/// Bounds that keep a hostile or broken peer from making the parser allocate or recurse without limit.
public struct RESPLimits: Sendable, Equatable {
    /// Longest bulk string, bulk error or verbatim string, and the total of one streamed string.
    public var maxBulkLength: Int
    /// Most elements in one array, set or push, and most pairs in one map or attribute.
    public var maxAggregateCount: Int
    /// Deepest nesting of aggregates (a flat array is depth 1).
    public var maxDepth: Int
    /// Longest simple string, simple error, double or big number line.
    public var maxLineLength: Int

    public init(maxBulkLength: Int, maxAggregateCount: Int, maxDepth: Int, maxLineLength: Int) {
        self.maxBulkLength = maxBulkLength; self.maxAggregateCount = maxAggregateCount
        self.maxDepth = maxDepth; self.maxLineLength = maxLineLength
    }

    /// What a general client accepts: Valkey's own 512 MiB bulk limit.
    public static let standard = RESPLimits(maxBulkLength: 512 << 20, maxAggregateCount: 1 << 24,
                                            maxDepth: 64, maxLineLength: 1 << 20)
    /// What a readiness probe needs: PONG, an error line, a small INFO section.
    public static let probe = RESPLimits(maxBulkLength: 1 << 20, maxAggregateCount: 1024,
                                         maxDepth: 8, maxLineLength: 16 << 10)
}

/// An incremental RESP2/RESP3 decoder.
///
/// `parse(from:)` decodes one value from the front of a slice, removing its bytes only when the value
/// is complete; on short input it returns nil and leaves the slice alone; on malformed input or a
/// value over the limits it throws `WireError`. `append`/`next` wrap it with a buffer for stream use.
public struct RESPParser: Sendable {
    public var limits: RESPLimits
    private var buffer: [UInt8] = []
    private var start = 0
    /// `buffer.count` must reach this before a new attempt can succeed (avoids rescanning a large bulk string).
    private var needed = 0

    public init(limits: RESPLimits = .standard) { self.limits = limits }

    /// Bytes received but not yet returned as values.
    public var bufferedByteCount: Int { buffer.count - start }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start); needed -= start; start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete value from the appended bytes, or nil until more arrive.
    public mutating func next() throws -> RESPValue? {
        guard buffer.count > start, buffer.count >= needed else { return nil }
        let outcome = try buffer.withUnsafeBufferPointer { whole -> (RESPValue?, Int) in
            var scanner = RESPScanner(bytes: whole, index: start, limits: limits)
            let value = try scanner.value(depth: 0)
            return (value, value == nil ? scanner.needed : scanner.index)
        }
        if let value = outcome.0 {
            start = outcome.1; needed = 0
            if start == buffer.count { buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 16); start = 0 }
            return value
        }
        needed = outcome.1
        return nil
    }

    /// Decodes one value from the front of `input`; removes its bytes on success, leaves `input` alone otherwise.
    public func parse(from input: inout ArraySlice<UInt8>) throws -> RESPValue? {
        let consumed: Int
        let value: RESPValue?
        (value, consumed) = try input.withUnsafeBufferPointer { b -> (RESPValue?, Int) in
            var scanner = RESPScanner(bytes: b, index: 0, limits: limits)
            let v = try scanner.value(depth: 0)
            return (v, scanner.index)
        }
        if value != nil { input = input.dropFirst(consumed) }
        return value
    }

    /// Decodes exactly one value that must fill `bytes` completely (tests, fixtures).
    public func parseComplete(_ bytes: [UInt8]) throws -> RESPValue? {
        var slice = bytes[...]
        guard let v = try parse(from: &slice) else { return nil }
        guard slice.isEmpty else {
            throw WireError(.malformed, "RESP: \(slice.count) bytes left over after one complete value")
        }
        return v
    }
}

/// One decoding attempt over a contiguous buffer. Returns nil (with `needed` set) when the value is
/// not complete yet; indices move only within this attempt.
struct RESPScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index: Int
    let limits: RESPLimits
    /// When a scan returns nil: the buffer length at which trying again can make progress.
    var needed = 0

    init(bytes: UnsafeBufferPointer<UInt8>, index: Int, limits: RESPLimits) {
        self.bytes = bytes; self.index = index; self.limits = limits
    }

    /// Longest numeric header (`$`, `*`, `:` …): "-9223372036854775808" is 20 bytes.
    static let maxNumberLength = 24

    static let cr: UInt8 = 13, lf: UInt8 = 10

    mutating func value(depth: Int) throws -> RESPValue? {
        guard index < bytes.count else { needed = index + 1; return nil }
        let typeOffset = index
        let type = bytes[index]
        switch type {
        case UInt8(ascii: "+"):
            guard let r = try line(limit: limits.maxLineLength, what: "simple string") else { return nil }
            return .simpleString(text(r))
        case UInt8(ascii: "-"):
            guard let r = try line(limit: limits.maxLineLength, what: "error") else { return nil }
            return .error(text(r))
        case UInt8(ascii: ":"):
            guard let r = try line(limit: Self.maxNumberLength, what: "integer") else { return nil }
            guard let n = integer(r) else { throw malformed("integer", at: typeOffset, r) }
            return .integer(n)
        case UInt8(ascii: "$"):
            return try bulk(typeOffset: typeOffset, what: "bulk string", allowNull: true, allowStreamed: true).map {
                $0.map { RESPValue.bulkString($0) } ?? .null
            }
        case UInt8(ascii: "!"):
            return try bulk(typeOffset: typeOffset, what: "bulk error", allowNull: false, allowStreamed: false).map {
                .bulkError(String(decoding: $0 ?? [], as: UTF8.self))
            }
        case UInt8(ascii: "="):
            guard let b = try bulk(typeOffset: typeOffset, what: "verbatim string", allowNull: false, allowStreamed: false)
            else { return nil }
            let data = b ?? []
            guard data.count >= 4, data[3] == UInt8(ascii: ":") else {
                throw WireError(.malformed, "RESP: verbatim string at byte \(typeOffset) lacks its \"fmt:\" prefix")
            }
            return .verbatimString(format: String(decoding: data[0..<3], as: UTF8.self),
                                   text: String(decoding: data[4...], as: UTF8.self))
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let elements = try aggregate(typeOffset: typeOffset, depth: depth, pairs: false, allowNull: type == UInt8(ascii: "*"))
            else { return nil }
            guard let list = elements else { return .null }
            switch type {
            case UInt8(ascii: "*"): return .array(list)
            case UInt8(ascii: "~"): return .set(list)
            default: return .push(list)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let elements = try aggregate(typeOffset: typeOffset, depth: depth, pairs: true, allowNull: false)
            else { return nil }
            let list = elements ?? []
            var pairs = [RESPPair]()
            pairs.reserveCapacity(list.count / 2)
            var i = 0
            while i < list.count { pairs.append(RESPPair(list[i], list[i + 1])); i += 2 }
            if type == UInt8(ascii: "%") { return .map(pairs) }
            // Attributes describe the value that follows them.
            guard let described = try value(depth: depth + 1) else { return nil }
            return .attribute(pairs, described)
        case UInt8(ascii: "_"):
            guard let r = try line(limit: 0, what: "null") else { return nil }
            _ = r
            return .null
        case UInt8(ascii: "#"):
            guard let r = try line(limit: 1, what: "boolean") else { return nil }
            guard r.count == 1 else { throw malformed("boolean", at: typeOffset, r) }
            switch bytes[r.lowerBound] {
            case UInt8(ascii: "t"): return .boolean(true)
            case UInt8(ascii: "f"): return .boolean(false)
            default: throw malformed("boolean", at: typeOffset, r)
            }
        case UInt8(ascii: ","):
            guard let r = try line(limit: min(limits.maxLineLength, 1024), what: "double") else { return nil }
            guard let d = double(r) else { throw malformed("double", at: typeOffset, r) }
            return .double(d)
        case UInt8(ascii: "("):
            guard let r = try line(limit: limits.maxLineLength, what: "big number") else { return nil }
            guard isBigNumber(r) else { throw malformed("big number", at: typeOffset, r) }
            return .bigNumber(text(r))
        default:
            throw WireError(.malformed, "RESP: unknown type byte \(describeByte(type)) at byte \(typeOffset)\(peerHint(typeOffset))")
        }
    }

    // MARK: lines

    /// The content range of a CRLF-terminated line after the type byte; moves past the CRLF.
    private mutating func line(limit: Int, what: String) throws -> Range<Int>? {
        let contentStart = index + 1
        var i = contentStart
        let end = bytes.count
        let scanEnd = min(end, contentStart &+ limit &+ 1)
        while i < scanEnd {
            let b = bytes[i]
            if b == Self.cr {
                guard i + 1 < end else { needed = i + 2; return nil }
                guard bytes[i + 1] == Self.lf else {
                    throw WireError(.malformed, "RESP: \(what) line at byte \(index) has a CR without LF")
                }
                index = i + 2
                return contentStart..<i
            }
            if b == Self.lf {
                throw WireError(.malformed, "RESP: \(what) line at byte \(index) ends in a bare LF\(peerHint(index))")
            }
            i += 1
        }
        if i >= contentStart &+ limit &+ 1 {
            if limit <= 1 { throw WireError(.malformed, "RESP: invalid \(what) \(quote(index, limit + 2)) at byte \(index)") }
            throw WireError(.tooLarge, "RESP: \(what) line at byte \(index) is longer than the \(limit)-byte limit")
        }
        needed = i + 1
        return nil
    }

    private func text(_ r: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[r]), as: UTF8.self)
    }

    private func integer(_ r: Range<Int>) -> Int64? {
        guard !r.isEmpty else { return nil }
        var i = r.lowerBound
        var negative = false
        if bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
            negative = bytes[i] == UInt8(ascii: "-"); i += 1
        }
        guard i < r.upperBound else { return nil }
        // Accumulate negatively so that Int64.min parses.
        var value: Int64 = 0
        while i < r.upperBound {
            let d = bytes[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.subtractingReportingOverflow(Int64(d))
            if o1 || o2 { return nil }
            value = s; i += 1
        }
        if negative { return value }
        let (p, o) = Int64(0).subtractingReportingOverflow(value)
        return o ? nil : p
    }

    private func double(_ r: Range<Int>) -> Double? {
        let count = r.count
        guard count > 0 else { return nil }
        func matches(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == count else { return false }
            for k in 0..<count where bytes[r.lowerBound + k] | 0x20 != s.utf8Start[k] { return false }
            return true
        }
        if matches("inf") || matches("+inf") { return .infinity }
        if matches("-inf") { return -.infinity }
        if matches("nan") || matches("-nan") { return .nan }
        // [sign] digits [. digits] [(e|E) [sign] digits]: checked here because Double("0x1p3") would pass.
        var i = r.lowerBound
        let e = r.upperBound
        if bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
        var intDigits = 0
        while i < e, bytes[i] &- UInt8(ascii: "0") < 10 { i += 1; intDigits += 1 }
        var fracDigits = 0
        if i < e, bytes[i] == UInt8(ascii: ".") {
            i += 1
            while i < e, bytes[i] &- UInt8(ascii: "0") < 10 { i += 1; fracDigits += 1 }
        }
        guard intDigits + fracDigits > 0 else { return nil }
        if i < e, bytes[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < e, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
            var expDigits = 0
            while i < e, bytes[i] &- UInt8(ascii: "0") < 10 { i += 1; expDigits += 1 }
            guard expDigits > 0 else { return nil }
        }
        guard i == e else { return nil }
        return Double(text(r))
    }

    private func isBigNumber(_ r: Range<Int>) -> Bool {
        var i = r.lowerBound
        if i < r.upperBound, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
        guard i < r.upperBound else { return false }
        while i < r.upperBound { guard bytes[i] &- UInt8(ascii: "0") < 10 else { return false }; i += 1 }
        return true
    }

    // MARK: lengths

    private enum Length { case count(Int), null, streamed }

    private mutating func lengthHeader(typeOffset: Int, what: String, allowNull: Bool, allowStreamed: Bool) throws -> Length? {
        guard let r = try line(limit: Self.maxNumberLength, what: "\(what) length") else { return nil }
        if allowStreamed, r.count == 1, bytes[r.lowerBound] == UInt8(ascii: "?") { return .streamed }
        guard let n = integer(r), bytes[r.lowerBound] != UInt8(ascii: "+") else {
            throw malformed("\(what) length", at: typeOffset, r)
        }
        if n == -1 && allowNull { return .null }
        guard n >= 0 else { throw malformed("\(what) length", at: typeOffset, r) }
        guard n <= Int64(Int.max) else { throw malformed("\(what) length", at: typeOffset, r) }
        return .count(Int(n))
    }

    /// The payload of `$`, `!` or `=`: nil when incomplete, `.some(nil)` for a null bulk string.
    private mutating func bulk(typeOffset: Int, what: String, allowNull: Bool, allowStreamed: Bool) throws -> [UInt8]?? {
        guard let length = try lengthHeader(typeOffset: typeOffset, what: what, allowNull: allowNull, allowStreamed: allowStreamed)
        else { return nil }
        switch length {
        case .null: return .some(nil)
        case .count(let n):
            guard n <= limits.maxBulkLength else {
                throw WireError(.tooLarge, "RESP: \(what) at byte \(typeOffset) declares \(n) bytes, over the \(limits.maxBulkLength)-byte limit")
            }
            guard let data = try payload(n, typeOffset: typeOffset, what: what) else { return nil }
            return .some(data)
        case .streamed:
            // `$?` then `;len` chunks, ended by `;0`.
            var data = [UInt8]()
            while true {
                guard index < bytes.count else { needed = index + 1; return nil }
                guard bytes[index] == UInt8(ascii: ";") else {
                    throw WireError(.malformed, "RESP: streamed string chunk at byte \(index) starts with \(describeByte(bytes[index])), not ';'")
                }
                let chunkOffset = index
                guard case .count(let n)? = try lengthHeader(typeOffset: chunkOffset, what: "string chunk", allowNull: false, allowStreamed: false)
                else { return nil }
                if n == 0 { return .some(data) }
                guard n <= limits.maxBulkLength - data.count else {
                    throw WireError(.tooLarge, "RESP: streamed string at byte \(typeOffset) grows over the \(limits.maxBulkLength)-byte limit")
                }
                guard let chunk = try payload(n, typeOffset: chunkOffset, what: "string chunk") else { return nil }
                data += chunk
            }
        }
    }

    private mutating func payload(_ n: Int, typeOffset: Int, what: String) throws -> [UInt8]? {
        let end = index + n
        guard end + 2 <= bytes.count else { needed = end + 2; return nil }
        guard bytes[end] == Self.cr, bytes[end + 1] == Self.lf else {
            throw WireError(.malformed, "RESP: \(what) at byte \(typeOffset) is not followed by CRLF after its \(n) bytes")
        }
        let data = Array(UnsafeBufferPointer(rebasing: bytes[index..<end]))
        index = end + 2
        return data
    }

    // MARK: aggregates

    /// The elements of an aggregate (keys and values interleaved for maps): nil when incomplete,
    /// `.some(nil)` for a RESP2 null array.
    private mutating func aggregate(typeOffset: Int, depth: Int, pairs: Bool, allowNull: Bool) throws -> [RESPValue]?? {
        let what = pairs ? "map" : "aggregate"
        guard let length = try lengthHeader(typeOffset: typeOffset, what: what, allowNull: allowNull,
                                            allowStreamed: bytes[typeOffset] != UInt8(ascii: "|") && bytes[typeOffset] != UInt8(ascii: ">"))
        else { return nil }
        guard depth + 1 <= limits.maxDepth else {
            throw WireError(.tooDeep, "RESP: aggregates nested deeper than \(limits.maxDepth) levels at byte \(typeOffset)")
        }
        switch length {
        case .null: return .some(nil)
        case .count(let n):
            guard n <= limits.maxAggregateCount else {
                throw WireError(.tooLarge, "RESP: \(what) at byte \(typeOffset) declares \(n) elements, over the \(limits.maxAggregateCount)-element limit")
            }
            let total = pairs ? n * 2 : n
            var list = [RESPValue]()
            // Reserve only what the bytes present could hold: the declared count is the peer's claim.
            list.reserveCapacity(min(total, (bytes.count - index) / 3, 1024))
            for _ in 0..<total {
                guard let v = try value(depth: depth + 1) else { return nil }
                list.append(v)
            }
            return .some(list)
        case .streamed:
            var list = [RESPValue]()
            while true {
                guard index < bytes.count else { needed = index + 1; return nil }
                if bytes[index] == UInt8(ascii: ".") {
                    guard let r = try line(limit: 0, what: "end of streamed aggregate") else { return nil }
                    _ = r
                    if pairs && list.count % 2 != 0 {
                        throw WireError(.malformed, "RESP: streamed map at byte \(typeOffset) ends after a key without its value")
                    }
                    return .some(list)
                }
                guard (pairs ? list.count / 2 : list.count) < limits.maxAggregateCount else {
                    throw WireError(.tooLarge, "RESP: streamed \(what) at byte \(typeOffset) grows over the \(limits.maxAggregateCount)-element limit")
                }
                guard let v = try value(depth: depth + 1) else { return nil }
                list.append(v)
            }
        }
    }

    // MARK: messages

    private func malformed(_ what: String, at offset: Int, _ r: Range<Int>) -> WireError {
        WireError(.malformed, "RESP: invalid \(what) \(quote(r.lowerBound - 1, max(r.count + 1, 1))) at byte \(offset)")
    }

    private func quote(_ from: Int, _ count: Int) -> String {
        let end = min(bytes.count, from + min(count, 40))
        return Bytes.quoted(UnsafeBufferPointer(rebasing: bytes[max(0, from)..<end]), truncated: from + count > end)
    }

    private func describeByte(_ b: UInt8) -> String {
        (32...126).contains(b) ? "'\(String(UnicodeScalar(b)))' (0x\(Bytes.hex([b])))" : "0x\(Bytes.hex([b]))"
    }

    /// Names the protocol when a non-RESP peer answered (a common mistake: a web server on the Valkey port).
    private func peerHint(_ offset: Int) -> String {
        let available = bytes.count - offset
        let prefix = "HTTP/"
        let probe = min(available, prefix.utf8.count)
        if probe >= 4, zip(UnsafeBufferPointer(rebasing: bytes[offset..<(offset + probe)]), prefix.utf8).allSatisfy({ $0 == $1 }) {
            return ": the peer speaks HTTP, not RESP"
        }
        return ": starts with \(quote(offset, 24))"
    }
}
