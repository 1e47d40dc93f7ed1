/// Docker Compose's variable interpolation (compose-go's `template` package), as Compose v2 applies it to
/// `.env` values and to the compose file:
///
/// - `$$` is a literal `$`;
/// - `$NAME` and `${NAME}` take the value, or an empty string when unset;
/// - `${NAME:-default}` / `${NAME-default}`: the default when unset or empty / only when unset;
/// - `${NAME:?message}` / `${NAME?message}`: an error when unset or empty / only when unset;
/// - `${NAME:+other}` / `${NAME+other}`: `other` when set and not empty / when set;
/// - names are `[_A-Za-z][_A-Za-z0-9]*` (matched case-insensitively, so the Kelvin sign and long s count);
/// - a `$` before anything else stays literal, while a `${` that does not start a valid reference is an error.
///
/// The operand of an operator runs to the last `}` on the line and is then cut at the brace that closes
/// the reference; whatever follows is interpolated again. That is how compose-go handles
/// `${A:-x} and ${B:-y}` and nested defaults such as `${A:-${B}}`, and this code follows it step by step.
public enum Interpolation {
    /// Why a template could not be interpolated. `offset` is the index, in Unicode scalars, of the `$`
    /// that starts the failing reference in the outermost template.
    public enum Failure: Sendable, Equatable {
        case invalidTemplate(offset: Int)
        case requiredVariableMissing(name: String, message: String, offset: Int)
        case nestedTooDeeply(offset: Int)

        public var offset: Int {
            switch self {
            case .invalidTemplate(let o), .nestedTooDeeply(let o): return o
            case .requiredVariableMissing(_, _, let o): return o
            }
        }
    }

    /// Nesting bound for `${A:-${B:-…}}`; compose-go has none, but a hostile file must not exhaust the stack.
    public static let maximumDepth = 64

    /// Interpolates `template`. `lookup` returns nil for an unset variable; `unset` hears about each unset
    /// variable read without a default (Compose warns about those and substitutes an empty string).
    /// On failure the value is meaningless and `failure` says what went wrong first.
    public static func substitute(_ template: String,
                                  lookup: (String) -> String?,
                                  unset: (String) -> Void = { _ in }) -> (value: String, failure: Failure?) {
        let (out, failure) = substitute(Array(template.unicodeScalars), lookup: lookup, unset: unset)
        return (String(String.UnicodeScalarView(out)), failure)
    }

    public static func substitute(_ template: [Unicode.Scalar],
                                  lookup: (String) -> String?,
                                  unset: (String) -> Void = { _ in }) -> (value: [Unicode.Scalar], failure: Failure?) {
        withoutActuallyEscaping(lookup) { lookup in
            withoutActuallyEscaping(unset) { unset in
                var engine = Engine(lookup: lookup, unset: unset)
                let out = engine.substitute(template[...], depth: 0)
                return (out, engine.failure)
            }
        }
    }

    /// Throwing form, reporting a failure as `WireError(.malformed)` with a message that never repeats
    /// the template (it may hold a password).
    public static func interpolate(_ template: String, lookup: (String) -> String?) throws(WireError) -> String {
        let (value, failure) = substitute(template, lookup: lookup)
        if let failure { throw WireError(.malformed, failure.message) }
        return value
    }

    // MARK: - the matcher

    /// What the interpolation pattern matched at a `$`.
    enum Match {
        case escaped(end: Int)
        case named(name: ArraySlice<Unicode.Scalar>, end: Int)
        case braced(substitution: ArraySlice<Unicode.Scalar>, end: Int)
        case invalid(end: Int)

        var end: Int {
            switch self {
            case .escaped(let e), .named(_, let e), .braced(_, let e), .invalid(let e): return e
            }
        }
    }

    static func isNameStart(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x5F, 0x41...0x5A, 0x61...0x7A: return true
        case 0x212A, 0x017F: return true   // Kelvin sign and long s fold to k and s
        default: return false
        }
    }
    static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        isNameStart(c) || (c.value >= 0x30 && c.value <= 0x39)
    }
    static func isOperator(_ c: Unicode.Scalar) -> Bool { c == "-" || c == "+" || c == "?" }

    /// The pattern `\$(?i:(\$)|([_a-z][_a-z0-9]*)|{(?:([_a-z][_a-z0-9]*(?::?[-+?](.*))?)}|()))` tried at `i`,
    /// with the leftmost-first, greedy preferences of Go's regexp. `t[i]` must be `$`.
    static func match(_ t: ArraySlice<Unicode.Scalar>, at i: Int) -> Match? {
        let next = i + 1
        guard next < t.endIndex else { return nil }
        let c = t[next]
        if c == "$" { return .escaped(end: next + 1) }
        if isNameStart(c) {
            var j = next + 1
            while j < t.endIndex, isNameCharacter(t[j]) { j += 1 }
            return .named(name: t[next..<j], end: j)
        }
        guard c == "{" else { return nil }
        let nameStart = next + 1
        if nameStart < t.endIndex, isNameStart(t[nameStart]) {
            var j = nameStart + 1
            while j < t.endIndex, isNameCharacter(t[j]) { j += 1 }
            // `.` does not match a newline, so an operand ends at the line's end at the latest.
            func lastClosingBrace(from start: Int) -> Int? {
                var k = start, last: Int? = nil
                while k < t.endIndex, t[k] != "\n" {
                    if t[k] == "}" { last = k }
                    k += 1
                }
                return last
            }
            if j + 1 < t.endIndex, t[j] == ":", isOperator(t[j + 1]), let close = lastClosingBrace(from: j + 2) {
                return .braced(substitution: t[nameStart..<close], end: close + 1)
            }
            if j < t.endIndex, isOperator(t[j]), let close = lastClosingBrace(from: j + 1) {
                return .braced(substitution: t[nameStart..<close], end: close + 1)
            }
            if j < t.endIndex, t[j] == "}" {
                return .braced(substitution: t[nameStart..<j], end: j + 1)
            }
        }
        return .invalid(end: nameStart)
    }

    enum Operator: CaseIterable {
        case requiredNonEmpty, required, defaultIfEmpty, defaultIfUnset, alternativeIfNonEmpty, alternativeIfSet
        var separator: [Unicode.Scalar] {
            switch self {
            case .requiredNonEmpty: return [":", "?"]
            case .required: return ["?"]
            case .defaultIfEmpty: return [":", "-"]
            case .defaultIfUnset: return ["-"]
            case .alternativeIfNonEmpty: return [":", "+"]
            case .alternativeIfSet: return ["+"]
            }
        }
    }

    static func firstIndex(of needle: [Unicode.Scalar], in hay: ArraySlice<Unicode.Scalar>) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count else { return nil }
        var i = hay.startIndex
        while i + needle.count <= hay.endIndex {
            var ok = true
            for (k, n) in needle.enumerated() where hay[i + k] != n { ok = false; break }
            if ok { return i }
            i += 1
        }
        return nil
    }

    /// compose-go picks the operator whose separator occurs first in the matched text.
    static func chooseOperator(_ text: ArraySlice<Unicode.Scalar>) -> Operator? {
        var best: (Operator, Int)? = nil
        for op in Operator.allCases {
            if let idx = firstIndex(of: op.separator, in: text), best == nil || idx < best!.1 { best = (op, idx) }
        }
        return best?.0
    }

    /// compose-go's brace matcher: the index of the `}` that closes the first `{`, where the character
    /// right after each `{` is skipped; nil when the braces do not balance.
    static func firstClosingBrace(_ s: ArraySlice<Unicode.Scalar>) -> Int? {
        var open = 0
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "}" {
                open -= 1
                if open == 0 { return i }
            }
            if s[i] == "{" { open += 1; i += 1 }
            i += 1
        }
        return nil
    }

    struct Engine {
        let lookup: (String) -> String?
        let unset: (String) -> Void
        var failure: Failure? = nil
        /// Offset of the outermost `$` being replaced, for error positions.
        var outerOffset = 0

        init(lookup: @escaping (String) -> String?, unset: @escaping (String) -> Void) {
            self.lookup = lookup; self.unset = unset
        }

        mutating func fail(_ f: Failure) { if failure == nil { failure = f } }

        func string(_ s: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(s)) }

        /// Replaces every match in `t`; the first failure is kept and the rest of the text still scanned,
        /// as Go's ReplaceAllStringFunc does.
        mutating func substitute(_ t: ArraySlice<Unicode.Scalar>, depth: Int) -> [Unicode.Scalar] {
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(t.count)
            var i = t.startIndex
            while i < t.endIndex {
                if t[i] == "$", let m = Interpolation.match(t, at: i) {
                    if depth == 0 { outerOffset = i - t.startIndex }
                    out += replacement(t[i..<m.end], depth: depth)
                    i = m.end
                } else {
                    out.append(t[i]); i += 1
                }
            }
            return out
        }

        mutating func replacement(_ matched: ArraySlice<Unicode.Scalar>, depth: Int) -> [Unicode.Scalar] {
            guard depth < Interpolation.maximumDepth else { fail(.nestedTooDeeply(offset: outerOffset)); return [] }
            let op = Interpolation.chooseOperator(matched)
            var substring = matched
            var rest = matched[matched.endIndex...]
            if let close = Interpolation.firstClosingBrace(matched) {
                rest = matched[(close + 1)...]
                substring = matched[...close]
            }
            let normalised = Array(substring)
            guard let m = Interpolation.match(normalised[...], at: 0) else {
                fail(.invalidTemplate(offset: outerOffset)); return []
            }
            switch m {
            case .escaped:
                return ["$"]
            case .invalid:
                fail(.invalidTemplate(offset: outerOffset)); return []
            case .named(let name, _):
                let n = string(name)
                if let v = lookup(n) { return Array(v.unicodeScalars) }
                unset(n)
                return []
            case .braced(let substitution, _):
                if let op, let sepIndex = Interpolation.firstIndex(of: op.separator, in: substitution) {
                    let name = string(substitution[..<sepIndex])
                    let operand = substitution[(sepIndex + op.separator.count)...]
                    let argument = substitute(operand, depth: depth + 1)
                    let value = lookup(name)
                    var result: [Unicode.Scalar]
                    switch op {
                    case .requiredNonEmpty, .required:
                        let ok = value != nil && (op == .required || !value!.isEmpty)
                        guard ok else {
                            fail(.requiredVariableMissing(name: name, message: String(String.UnicodeScalarView(argument)),
                                                          offset: outerOffset))
                            return []
                        }
                        result = Array(value!.unicodeScalars)
                    case .defaultIfEmpty:
                        result = (value == nil || value!.isEmpty) ? argument : Array(value!.unicodeScalars)
                    case .defaultIfUnset:
                        result = value == nil ? argument : Array(value!.unicodeScalars)
                    case .alternativeIfNonEmpty:
                        result = (value != nil && !value!.isEmpty) ? argument : Array((value ?? "").unicodeScalars)
                    case .alternativeIfSet:
                        result = value != nil ? argument : []
                    }
                    result += substitute(rest, depth: depth + 1)
                    return result
                }
                let n = string(substitution)
                if let v = lookup(n) { return Array(v.unicodeScalars) }
                unset(n)
                return []
            }
        }
    }

    // MARK: - escapes in double-quoted values

    /// compose-go's escape handling for double-quoted `.env` values, applied after the quotes are removed
    /// and before interpolation: `\a \b \f \n \r \t \v \\ \"` as in Go, `\$` becomes `$$` (a literal `$`
    /// once interpolated), `\0ooo` is an octal byte value, and `\c` and every other sequence stay as written.
    public static func expandEscapes(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            guard s[i] == "\\", i + 1 < s.count else { out.append(s[i]); i += 1; continue }
            let c = s[i + 1]
            switch c {
            case "a": out.append("\u{07}"); i += 2
            case "b": out.append("\u{08}"); i += 2
            case "f": out.append("\u{0C}"); i += 2
            case "n": out.append("\n"); i += 2
            case "r": out.append("\r"); i += 2
            case "t": out.append("\t"); i += 2
            case "v": out.append("\u{0B}"); i += 2
            case "\\": out.append("\\"); i += 2
            case "\"": out.append("\""); i += 2
            case "$": out += ["$", "$"]; i += 2
            case "c": out += ["\\", "c"]; i += 2
            case "0":
                // `\0` plus up to three digits; compose-go rewrites `\0` to `\` and unquotes the rest as a
                // Go octal escape, keeping the rewritten text when that fails.
                var j = i + 2
                while j < s.count, j < i + 5, s[j].value >= 0x30, s[j].value <= 0x39 { j += 1 }
                let digits = s[(i + 2)..<j]
                var value: UInt32 = 0
                var octal = digits.count == 3
                for d in digits {
                    let x = d.value - 0x30
                    if x > 7 { octal = false }
                    value = value << 3 | x
                }
                if octal && value <= 255, let scalar = Unicode.Scalar(value) {
                    out.append(scalar)
                } else {
                    out.append("\\"); out += digits
                }
                i = j
            default:
                out.append("\\"); i += 1
            }
        }
        return out
    }
}

extension Interpolation.Failure {
    /// A message for people that never repeats the value being interpolated.
    public var message: String {
        switch self {
        case .invalidTemplate:
            return "invalid interpolation: '${' must be followed by a name and '}' (for example ${NAME} or ${NAME:-default}); write $$ for a literal $"
        case .requiredVariableMissing(let name, let message, _):
            return message.isEmpty ? "required variable \(name) is missing a value"
                : "required variable \(name) is missing a value: \(message)"
        case .nestedTooDeeply:
            return "interpolation nested more than \(Interpolation.maximumDepth) levels deep"
        }
    }
}
