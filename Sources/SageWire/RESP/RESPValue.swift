/// One RESP2 or RESP3 value, as a server sends it.
///
/// RESP2 nulls (`$-1`, `*-1`) and the RESP3 null (`_`) all decode to `.null`. Streamed RESP3 strings
/// and aggregates decode to the same cases as their length-prefixed forms.
public indirect enum RESPValue: Sendable, Hashable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR message`: the whole line, code first.
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$5\r\nhello`: binary-safe.
    case bulkString([UInt8])
    /// `*2 …`
    case array([RESPValue])
    /// `_`, `$-1`, `*-1`
    case null
    /// `%2 …` (RESP3): pairs in the order received.
    case map([RESPPair])
    /// `~3 …` (RESP3)
    case set([RESPValue])
    /// `,3.14`, `,inf`, `,-inf`, `,nan` (RESP3)
    case double(Double)
    /// `#t`, `#f` (RESP3)
    case boolean(Bool)
    /// `(3492890328409238509324850943850943825024385` (RESP3): the digits, with any sign.
    case bigNumber(String)
    /// `!21\r\nSYNTAX invalid syntax` (RESP3): a binary-safe error, code first.
    case bulkError(String)
    /// `=15\r\ntxt:Some string` (RESP3): a three-letter format ("txt", "mkd") and the text.
    case verbatimString(format: String, text: String)
    /// `>3 …` (RESP3): an out-of-band message (pub/sub, invalidation).
    case push([RESPValue])
    /// `|1 …` (RESP3): attributes and the value they describe, which follows them on the wire.
    case attribute([RESPPair], RESPValue)
}

/// One key/value pair of a RESP3 map or attribute.
public struct RESPPair: Sendable, Hashable {
    public var key: RESPValue
    public var value: RESPValue
    public init(_ key: RESPValue, _ value: RESPValue) { self.key = key; self.value = value }
}

extension RESPValue {
    /// The text of a simple string, bulk string or verbatim string (bulk strings decoded as UTF-8, lossily).
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let b): return String(decoding: b, as: UTF8.self)
        case .verbatimString(_, let t): return t
        case .attribute(_, let v): return v.string
        default: return nil
        }
    }

    /// The whole message of an error reply (`-…` or `!…`), nil for any other value.
    public var errorMessage: String? {
        switch self {
        case .error(let m), .bulkError(let m): return m
        case .attribute(_, let v): return v.errorMessage
        default: return nil
        }
    }

    /// The error code: the first word of an error reply ("WRONGPASS", "LOADING", "ERR").
    public var errorCode: String? {
        guard let m = errorMessage else { return nil }
        return String(m.prefix { $0 != " " })
    }

    public var isNull: Bool {
        switch self {
        case .null: return true
        case .attribute(_, let v): return v.isNull
        default: return false
        }
    }

    /// The value without any attributes wrapped around it.
    public var withoutAttributes: RESPValue {
        if case .attribute(_, let v) = self { return v.withoutAttributes }
        return self
    }

    /// A short human description for messages: type and a clipped rendering of the content.
    public var summary: String {
        func clip(_ s: String) -> String { s.count > 60 ? String(s.prefix(60)) + "…" : s }
        switch self {
        case .simpleString(let s): return "+\(clip(s))"
        case .error(let s): return "-\(clip(s))"
        case .integer(let i): return ":\(i)"
        case .bulkString(let b): return "bulk string of \(b.count) bytes"
        case .array(let a): return "array of \(a.count)"
        case .null: return "null"
        case .map(let m): return "map of \(m.count)"
        case .set(let s): return "set of \(s.count)"
        case .double(let d): return ",\(d)"
        case .boolean(let b): return b ? "#t" : "#f"
        case .bigNumber(let n): return "(\(clip(n))"
        case .bulkError(let s): return "!\(clip(s))"
        case .verbatimString(let f, let t): return "=\(f):\(clip(t))"
        case .push(let p): return "push of \(p.count)"
        case .attribute(_, let v): return v.summary
        }
    }
}

/// Encodes commands (arrays of bulk strings, as servers expect requests) and any value (for tests and fakes).
public enum RESPEncoder {
    /// `["AUTH", "user", "secret"]` → `*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$6\r\nsecret\r\n`
    public static func command(_ arguments: [String]) -> [UInt8] {
        command(bytes: arguments.map { Array($0.utf8) })
    }

    public static func command(bytes arguments: [[UInt8]]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16 + arguments.reduce(0) { $0 + $1.count + 16 })
        appendHeader(UInt8(ascii: "*"), arguments.count, to: &out)
        for a in arguments {
            appendHeader(UInt8(ascii: "$"), a.count, to: &out)
            out += a
            out += crlf
        }
        return out
    }

    /// The wire form of any value. Doubles use Swift's shortest round-trip form.
    public static func encode(_ value: RESPValue) -> [UInt8] {
        var out = [UInt8]()
        encode(value, into: &out)
        return out
    }

    public static func encode(_ value: RESPValue, into out: inout [UInt8]) {
        switch value {
        case .simpleString(let s): line(UInt8(ascii: "+"), s, &out)
        case .error(let s): line(UInt8(ascii: "-"), s, &out)
        case .integer(let i): line(UInt8(ascii: ":"), String(i), &out)
        case .bulkString(let b):
            appendHeader(UInt8(ascii: "$"), b.count, to: &out); out += b; out += crlf
        case .array(let a):
            appendHeader(UInt8(ascii: "*"), a.count, to: &out); for v in a { encode(v, into: &out) }
        case .null: out += Array("_\r\n".utf8)
        case .map(let m):
            appendHeader(UInt8(ascii: "%"), m.count, to: &out)
            for p in m { encode(p.key, into: &out); encode(p.value, into: &out) }
        case .set(let s):
            appendHeader(UInt8(ascii: "~"), s.count, to: &out); for v in s { encode(v, into: &out) }
        case .double(let d):
            let text: String
            if d.isNaN { text = "nan" } else if d.isInfinite { text = d < 0 ? "-inf" : "inf" } else { text = "\(d)" }
            line(UInt8(ascii: ","), text, &out)
        case .boolean(let b): line(UInt8(ascii: "#"), b ? "t" : "f", &out)
        case .bigNumber(let n): line(UInt8(ascii: "("), n, &out)
        case .bulkError(let s):
            let b = Array(s.utf8)
            appendHeader(UInt8(ascii: "!"), b.count, to: &out); out += b; out += crlf
        case .verbatimString(let f, let t):
            let b = Array(f.utf8) + [UInt8(ascii: ":")] + Array(t.utf8)
            appendHeader(UInt8(ascii: "="), b.count, to: &out); out += b; out += crlf
        case .push(let p):
            appendHeader(UInt8(ascii: ">"), p.count, to: &out); for v in p { encode(v, into: &out) }
        case .attribute(let attrs, let v):
            appendHeader(UInt8(ascii: "|"), attrs.count, to: &out)
            for p in attrs { encode(p.key, into: &out); encode(p.value, into: &out) }
            encode(v, into: &out)
        }
    }

    private static let crlf: [UInt8] = [13, 10]

    private static func line(_ type: UInt8, _ text: String, _ out: inout [UInt8]) {
        out.append(type); out += text.utf8; out += crlf
    }

    private static func appendHeader(_ type: UInt8, _ n: Int, to out: inout [UInt8]) {
        out.append(type); out += String(n).utf8; out += crlf
    }
}
