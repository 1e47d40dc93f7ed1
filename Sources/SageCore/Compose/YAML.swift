/// A small, deterministic YAML writer for the compose file: block mappings and sequences, two-space
/// indentation, keys in the order given, and scalars quoted whenever a plain scalar could be read as
/// something else. It does not know about Compose interpolation: callers escape `$` in literal text
/// (`ComposeFile.literal`) before handing strings over.
public indirect enum YAMLNode: Sendable, Equatable {
    /// A string, written plain when that is unambiguous and double-quoted otherwise.
    case string(String)
    /// A string always double-quoted (port mappings and similar values that merely look numeric).
    case quoted(String)
    case integer(Int)
    case bool(Bool)
    case sequence([YAMLNode])
    /// A sequence written on one line, `[a, b]`, with every item double-quoted.
    case flowSequence([String])
    case mapping([(String, YAMLNode)])

    public static func == (a: YAMLNode, b: YAMLNode) -> Bool { YAML.render(a) == YAML.render(b) }
}

public enum YAML {
    /// The document for `root` (a mapping), ending with a newline.
    public static func render(_ root: YAMLNode) -> String {
        var out = ""
        write(root, indent: 0, into: &out, inlineAfterKey: false)
        return out
    }

    static func spaces(_ n: Int) -> String { String(repeating: " ", count: n) }

    static func write(_ node: YAMLNode, indent: Int, into out: inout String, inlineAfterKey: Bool) {
        switch node {
        case .mapping(let pairs):
            if pairs.isEmpty { out += inlineAfterKey ? " {}\n" : "{}\n"; return }
            if inlineAfterKey { out += "\n" }
            for (k, v) in pairs {
                out += spaces(indent) + scalar(k) + ":"
                writeValue(v, indent: indent, into: &out)
            }
        case .sequence(let items):
            if items.isEmpty { out += inlineAfterKey ? " []\n" : "[]\n"; return }
            if inlineAfterKey { out += "\n" }
            for item in items {
                out += spaces(indent) + "-"
                switch item {
                case .mapping(let pairs) where !pairs.isEmpty:
                    // "- key: value" with the rest of the mapping aligned under the first key.
                    var first = true
                    for (k, v) in pairs {
                        out += (first ? " " : spaces(indent + 2)) + scalar(k) + ":"
                        writeValue(v, indent: indent + 2, into: &out)
                        first = false
                    }
                case .sequence(let inner) where !inner.isEmpty:
                    out += "\n"
                    write(item, indent: indent + 2, into: &out, inlineAfterKey: false)
                default:
                    writeValue(item, indent: indent, into: &out)
                }
            }
        default:
            out += (inlineAfterKey ? " " : "") + inline(node) + "\n"
        }
    }

    /// After "key:" or "-": a scalar on the same line, a collection on the following lines.
    static func writeValue(_ v: YAMLNode, indent: Int, into out: inout String) {
        switch v {
        case .mapping: write(v, indent: indent + 2, into: &out, inlineAfterKey: true)
        case .sequence: write(v, indent: indent + 2, into: &out, inlineAfterKey: true)
        default: out += " " + inline(v) + "\n"
        }
    }

    static func inline(_ node: YAMLNode) -> String {
        switch node {
        case .string(let s): return scalar(s)
        case .quoted(let s): return doubleQuoted(s)
        case .integer(let n): return String(n)
        case .bool(let b): return b ? "true" : "false"
        case .flowSequence(let items): return "[" + items.map(doubleQuoted).joined(separator: ", ") + "]"
        case .sequence(let items) where items.isEmpty: return "[]"
        case .mapping(let pairs) where pairs.isEmpty: return "{}"
        case .sequence, .mapping: return ""
        }
    }

    /// Words YAML 1.1 or 1.2 would read as booleans or null.
    static let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"]

    /// A plain scalar is used only for text made of letters, digits and `_ . / - : @ + =`, starting with a
    /// letter, `_` or `/` and not ending in `:`; anything else is double-quoted.
    /// That keeps every number-like, boolean-like, null-like or indicator-led string quoted.
    public static func scalar(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return "\"\"" }
        let startOK = first == "_" || first == "/" || ("a"..."z").contains(first) || ("A"..."Z").contains(first)
        let bodyOK = s.unicodeScalars.allSatisfy { c in
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
                || c == "_" || c == "." || c == "/" || c == "-" || c == ":" || c == "@" || c == "+" || c == "="
        }
        if startOK && bodyOK && !s.hasSuffix(":") && !reserved.contains(s.lowercased()) {
            return s
        }
        return doubleQuoted(s)
    }

    public static func doubleQuoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if c.value < 0x20 || c.value == 0x7F || (c.value >= 0x80 && c.value < 0xA0) || c.value == 0x2028 || c.value == 0x2029 || c.value == 0xFEFF {
                    let hex = String(c.value, radix: 16, uppercase: true)
                    out += c.value <= 0xFF ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                        : "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}
