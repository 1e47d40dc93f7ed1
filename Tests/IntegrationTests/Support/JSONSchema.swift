import Foundation

/// A JSON document as a value (numbers keep whether they were written as integers).
indirect enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null, bool(Bool), integer(Int), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    static func parse(_ text: String) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

    subscript(key: String) -> JSONValue? { if case .object(let o) = self { return o[key] } else { return nil } }
    var string: String? { if case .string(let s) = self { return s } else { return nil } }
    var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    var int: Int? {
        switch self { case .integer(let i): return i; case .number(let d) where d == d.rounded(): return Int(d); default: return nil }
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .integer(let i): return "\(i)"
        case .number(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[\(a.map(\.description).joined(separator: ","))]"
        case .object(let o): return "{\(o.keys.sorted().map { "\"\($0)\":\(o[$0]!)" }.joined(separator: ","))}"
        }
    }
}

/// The part of JSON Schema that sagedev's schemas use: type, required, properties, items, enum and
/// additionalProperties (false, or a schema). Returns every violation, each with its JSON path.
enum JSONSchema {
    static func violations(of value: JSONValue, against schema: JSONValue, at path: String = "$") -> [String] {
        guard case .object(let s) = schema else { return [] }
        var out: [String] = []
        if let t = s["type"] {
            let allowed = t.array?.compactMap(\.string) ?? [t.string ?? ""]
            if !allowed.contains(where: { matches(value, type: $0) }) {
                return ["\(path): expected \(allowed.joined(separator: " or ")), found \(value)"]
            }
        }
        if let e = s["enum"]?.array, !e.contains(where: { same($0, value) }) {
            out.append("\(path): \(value) is not one of \(e.map(\.description).joined(separator: ", "))")
        }
        if case .object(let o) = value {
            for r in s["required"]?.array?.compactMap(\.string) ?? [] where o[r] == nil {
                out.append("\(path): missing required \"\(r)\"")
            }
            let properties = s["properties"]?.object ?? [:]
            for (k, v) in o.sorted(by: { $0.key < $1.key }) {
                if let p = properties[k] { out += violations(of: v, against: p, at: "\(path).\(k)"); continue }
                switch s["additionalProperties"] {
                case .bool(false)?: out.append("\(path): \"\(k)\" is not allowed by the schema")
                case .object(let extra)?: out += violations(of: v, against: .object(extra), at: "\(path).\(k)")
                default: break
                }
            }
        }
        if case .array(let a) = value, let items = s["items"] {
            for (i, v) in a.enumerated() { out += violations(of: v, against: items, at: "\(path)[\(i)]") }
        }
        return out
    }

    static func matches(_ v: JSONValue, type: String) -> Bool {
        switch (type, v) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .integer), ("number", .integer), ("number", .number): return true
        case ("integer", .number(let d)): return d == d.rounded()
        default: return false
        }
    }

    private static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.integer(let x), .number(let y)), (.number(let y), .integer(let x)): return Double(x) == y
        default: return a == b
        }
    }
}
