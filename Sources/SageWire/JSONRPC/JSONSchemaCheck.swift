/// Checks a value against the part of JSON Schema that tool inputs use: type, required, properties, items, enum,
/// additionalProperties (false or a schema), minimum and maximum. Returns each problem in words, with its path.
public enum JSONSchemaCheck {
    public static func problems(_ value: JSONValue, against schema: JSONValue, at path: String = "") -> [String] {
        guard case .object(let s) = schema else { return [] }
        let name = path.isEmpty ? "the arguments" : "\"\(path)\""
        if let t = s["type"] {
            let allowed = t.array?.compactMap(\.string) ?? [t.string ?? ""]
            if !allowed.contains(where: { matches(value, $0) }) {
                return ["\(name) must be \(allowed.map(article).joined(separator: " or ")), not \(value.json.prefix(80))"]
            }
        }
        var out: [String] = []
        if let e = s["enum"]?.array, !e.contains(value) {
            out.append("\(name) must be one of \(e.map(\.json).joined(separator: ", ")), not \(value.json.prefix(80))")
        }
        if let n = value.number {
            if let min = s["minimum"]?.number, n < min { out.append("\(name) must be at least \(s["minimum"]!.json)") }
            if let max = s["maximum"]?.number, n > max { out.append("\(name) must be at most \(s["maximum"]!.json)") }
        }
        if case .object(let o) = value {
            for r in s["required"]?.array?.compactMap(\.string) ?? [] where o[r] == nil {
                out.append("\(path.isEmpty ? "" : name + ": ")\"\(r)\" is required")
            }
            let properties = s["properties"]?.object ?? [:]
            for (k, v) in o.sorted(by: { $0.key < $1.key }) {
                let sub = path.isEmpty ? k : "\(path).\(k)"
                if let p = properties[k] { out += problems(v, against: p, at: sub); continue }
                switch s["additionalProperties"] {
                case .bool(false)?:
                    let known = properties.keys.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
                    out.append("unknown argument \"\(sub)\"" + (known.isEmpty ? "; this tool takes none" : "; known: \(known)"))
                case .object(let extra)?: out += problems(v, against: .object(extra), at: sub)
                default: break
                }
            }
        }
        if case .array(let a) = value, let items = s["items"] {
            for (i, v) in a.enumerated() { out += problems(v, against: items, at: "\(path)[\(i)]") }
        }
        return out
    }

    static func matches(_ v: JSONValue, _ type: String) -> Bool {
        switch (type, v) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .int), ("number", .int), ("number", .double): return true
        case ("integer", .double(let d)): return d == d.rounded()
        default: return false
        }
    }

    static func article(_ type: String) -> String {
        switch type {
        case "integer", "array", "object": return "an \(type)"
        case "boolean": return "true or false"
        default: return "a \(type)"
        }
    }
}
