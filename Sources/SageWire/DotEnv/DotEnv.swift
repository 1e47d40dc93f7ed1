/// A `.env` file read with exactly Docker Compose v2's rules (compose-go's `dotenv` package), so that
/// sagedev and `docker compose` see the same values:
///
/// - blank lines and lines starting with `#` are skipped; an `export ` prefix is ignored;
/// - `KEY=value` or `KEY: value`; names hold letters, digits, `_`, `.`, `-`, `[` and `]`;
/// - a bare `KEY` followed by a newline takes KEY from the process environment (nothing if unset);
/// - unquoted values end at the newline, lose a ` #` comment and trailing space, and are interpolated;
/// - single-quoted values are literal (only `\'` is unescaped) and may span lines;
/// - double-quoted values may span lines, expand `\n`, `\t`, `\"`, `\\`, `\$`, `\0ooo`… and are
///   interpolated; after the closing quote the same line goes on with the next statement;
/// - interpolation (`Interpolation`) sees the process environment first, then keys set earlier in the file;
/// - in the result the process environment overrides the file (`Document.effectiveValues`).
///
/// Compose stops at the first error; this parser records it with its line and column and carries on at
/// the next statement, so that every problem in a file is reported at once. Messages never repeat a value.
public enum DotEnv {
    /// A value written so that this parser, and Compose's, read it back unchanged: bare when nothing in it is
    /// special, else double quotes when nothing needs escaping, else single quotes (literal: `$PORT` stays as
    /// written), else double quotes with escapes.
    public static func quote(_ v: String) -> String {
        if v.isEmpty { return "" }
        let scalars = Array(v.unicodeScalars)
        let plain = scalars.allSatisfy { c in
            !(c.properties.isWhitespace || c == "$" || c == "#" || c == "\"" || c == "'" || c == "\\" || c.value < 0x20)
        }
        if plain { return v }
        let needsEscapes = scalars.contains { $0 == "\"" || $0 == "\\" || $0 == "$" || $0.value < 0x20 }
        if !needsEscapes { return "\"" + v + "\"" }
        if !scalars.contains(where: { $0 == "'" || $0 == "\\" }) && !scalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) {
            return "'" + v + "'"
        }
        var out = "\""
        for c in scalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "$": out += "\\$"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// One assignment, in file order (a key assigned twice appears twice; the later one wins).
    public struct Entry: Sendable, Equatable {
        public enum Form: Sendable, Equatable { case unquoted, singleQuoted, doubleQuoted, inherited }
        public var key: String
        /// After escapes and interpolation; for an inherited key, the environment's value.
        public var value: String
        public var form: Form
        /// 1-based position of the key.
        public var line: Int
        public var column: Int
        /// 1-based position where the value (or its opening quote) starts.
        public var valueLine: Int
        public var valueColumn: Int

        public init(key: String, value: String, form: Form, line: Int, column: Int, valueLine: Int, valueColumn: Int) {
            self.key = key; self.value = value; self.form = form; self.line = line; self.column = column
            self.valueLine = valueLine; self.valueColumn = valueColumn
        }
    }

    /// A problem found in the file: an error Compose would refuse the file for, or a warning it would print.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public enum Code: String, Sendable {
            case unexpectedCharacter, keyContainsSpace, missingKey, missingValue, unterminatedQuote
            case invalidInterpolation, requiredVariableMissing, nestedTooDeeply
            /// A warning: `$NAME` read an unset variable and became empty.
            case unsetVariable
        }
        public var code: Code
        public var message: String
        public var line: Int
        public var column: Int
        /// The key whose statement holds the problem, when known.
        public var key: String?
        public var isWarning: Bool { code == .unsetVariable }

        public init(_ code: Code, _ message: String, line: Int, column: Int, key: String? = nil) {
            self.code = code; self.message = message; self.line = line; self.column = column; self.key = key
        }
        public var description: String { "\(line):\(column): \(message)" }
    }

    public struct Document: Sendable, Equatable {
        public var entries: [Entry]
        /// Errors first-to-last in file order; the file is unusable when any is present.
        public var errors: [Problem]
        public var warnings: [Problem]
        /// The file's own values, later assignments winning (inherited keys carry the environment's value).
        public var values: [String: String]

        public init(entries: [Entry] = [], errors: [Problem] = [], warnings: [Problem] = [], values: [String: String] = [:]) {
            self.entries = entries; self.errors = errors; self.warnings = warnings; self.values = values
        }

        /// What Compose works with: every key of the file, with the process environment taking precedence.
        public func effectiveValues(environment: [String: String]) -> [String: String] {
            var out = values
            for k in out.keys { if let v = environment[k] { out[k] = v } }
            return out
        }

        /// The last entry for `key`, for positions in messages.
        public func entry(for key: String) -> Entry? { entries.last { $0.key == key } }
    }

    public static func parse(_ bytes: [UInt8], environment: [String: String] = [:]) -> Document {
        parse(String(decoding: bytes, as: UTF8.self), environment: environment)
    }

    public static func parse(_ text: String, environment: [String: String] = [:]) -> Document {
        var p = Parser(Array(text.unicodeScalars), environment: environment)
        p.run()
        return p.document
    }

    // MARK: - character classes, as Go defines them

    /// Go's `unicode.IsSpace` (newlines included).
    static func isUnicodeSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
    /// compose-go's `isSpace`: blank characters that are not a line break.
    static func isBlank(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0: return true
        default: return false
        }
    }
    /// Go regexp's `\s`.
    static func isRegexSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x0A, 0x0C, 0x0D, 0x20: return true
        default: return false
        }
    }
    static func isKeyCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "_", ".", "-", "[", "]": return true
        default: break
        }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    // MARK: - the parser

    struct Parser {
        let s: [Unicode.Scalar]
        let environment: [String: String]
        var document = Document()
        /// Scalar index where each line starts.
        var lineStarts: [Int] = [0]

        init(_ s: [Unicode.Scalar], environment: [String: String]) {
            var scalars = s
            if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
            self.s = scalars
            self.environment = environment
            for (i, c) in scalars.enumerated() where c == "\n" { lineStarts.append(i + 1) }
        }

        func position(_ index: Int) -> (line: Int, column: Int) {
            var lo = 0, hi = lineStarts.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
            }
            return (lo + 1, index - lineStarts[lo] + 1)
        }

        mutating func error(_ code: Problem.Code, _ message: String, at index: Int, key: String?) {
            let (l, c) = position(index)
            document.errors.append(Problem(code, message, line: l, column: c, key: key))
        }

        func string<C: Collection>(_ c: C) -> String where C.Element == Unicode.Scalar {
            String(String.UnicodeScalarView(c))
        }

        func indexOfNewline(from i: Int) -> Int? {
            var j = i
            while j < s.count { if s[j] == "\n" { return j }; j += 1 }
            return nil
        }

        /// Skips to just after the next newline (recovery after an error in a key).
        func afterLine(_ i: Int) -> Int { indexOfNewline(from: i).map { $0 + 1 } ?? s.count }

        func lookup(_ name: String) -> String? { environment[name] ?? document.values[name] }

        mutating func run() {
            var i = 0
            statements: while true {
                // The start of a statement: skip white space and comment lines.
                while i < s.count, DotEnv.isUnicodeSpace(s[i]) { i += 1 }
                if i >= s.count { break }
                if s[i] == "#" {
                    guard let nl = indexOfNewline(from: i) else { break }
                    i = nl
                    continue
                }
                // `export` followed by white space (Go's `\s`, which includes a newline).
                if i + 6 < s.count, string(s[i..<(i + 6)]) == "export", DotEnv.isRegexSpace(s[i + 6]) {
                    i += 6
                    while i < s.count, DotEnv.isBlank(s[i]) { i += 1 }
                }
                let keyStart = i
                var terminator: Int? = nil
                var j = i
                while j < s.count {
                    let c = s[j]
                    if DotEnv.isBlank(c) { j += 1; continue }
                    if c == "=" || c == ":" || c == "\n" { terminator = j; break }
                    if DotEnv.isKeyCharacter(c) { j += 1; continue }
                    let line = string(s[keyStart..<(indexOfNewline(from: keyStart) ?? s.count)])
                    let shown = line.split(separator: "=", maxSplits: 1).first.map(String.init) ?? line
                    error(.unexpectedCharacter,
                          "unexpected character \(quoted(c)) in variable name \"\(shown)\"; names may hold letters, digits, '_', '.', '-', '[' and ']'",
                          at: j, key: nil)
                    i = afterLine(j)
                    continue statements
                }
                guard let term = terminator else {
                    // Compose turns this into an assignment to an empty name and then fails.
                    let name = string(s[keyStart..<s.count]).trimmingTrailing(DotEnv.isUnicodeSpace)
                    error(.missingValue,
                          "'\(name)' has no '=' and the file ends there; write \(name)=value, or end the line with a newline to take \(name) from the environment",
                          at: keyStart, key: name)
                    break
                }
                let key = string(s[keyStart..<term]).trimmingTrailing(DotEnv.isUnicodeSpace)
                let keyPosition = position(keyStart)
                var keyIsValid = true
                if key.unicodeScalars.contains(" ") {
                    error(.keyContainsSpace, "variable name \"\(key)\" contains a space", at: keyStart, key: key)
                    keyIsValid = false
                }
                i = term + 1
                if s[term] == "\n" {
                    // A bare KEY line: inherited from the environment when set there.
                    if keyIsValid, !key.isEmpty, let v = environment[key] {
                        document.entries.append(Entry(key: key, value: v, form: .inherited, line: keyPosition.line,
                                                      column: keyPosition.column, valueLine: keyPosition.line,
                                                      valueColumn: keyPosition.column))
                        document.values[key] = v
                    }
                    continue
                }
                if key.isEmpty {
                    error(.missingKey, "'\(quotedCharacter(s[term]))' with no variable name before it", at: term, key: nil)
                    keyIsValid = false
                }
                while i < s.count, DotEnv.isBlank(s[i]) { i += 1 }
                let valueStart = i
                let valuePosition = position(valueStart)
                guard let (value, form, next) = value(at: valueStart, key: key) else { break statements }
                i = next
                if keyIsValid, let value {
                    document.entries.append(Entry(key: key, value: value, form: form, line: keyPosition.line,
                                                  column: keyPosition.column, valueLine: valuePosition.line,
                                                  valueColumn: valuePosition.column))
                    document.values[key] = value
                }
            }
        }

        /// Reads the value starting at `start`. Returns nil when the rest of the file cannot be parsed
        /// (an unterminated quote); the inner value is nil when it failed to interpolate.
        mutating func value(at start: Int, key: String) -> (String?, Entry.Form, Int)? {
            if start < s.count, s[start] == "\"" || s[start] == "'" {
                let quote = s[start]
                var chars: [Unicode.Scalar] = []
                var escaped = false
                var j = start + 1
                var closing: Int? = nil
                while j < s.count {
                    let c = s[j]
                    if escaped {
                        escaped = false
                        if c != quote { chars.append("\\") }
                        chars.append(c)
                    } else if c == "\\" {
                        escaped = true
                    } else if c == quote {
                        closing = j; break
                    } else {
                        chars.append(c)
                    }
                    j += 1
                }
                guard let close = closing else {
                    let kind = quote == "\"" ? "double" : "single"
                    error(.unterminatedQuote,
                          "the \(kind)-quoted value of \(key.isEmpty ? "this line" : key) starts here and is never closed; add the closing \(quote)",
                          at: start, key: key)
                    return nil
                }
                if quote == "'" { return (string(chars), .singleQuoted, close + 1) }
                let expanded = Interpolation.expandEscapes(chars)
                let v = interpolate(expanded, key: key, valueStart: start, offsetsMapDirectly: false)
                return (v, .doubleQuoted, close + 1)
            }
            let end = indexOfNewline(from: start) ?? s.count
            var raw = Array(s[start..<end])
            if let cut = Interpolation.firstIndex(of: [" ", "#"], in: raw[...]) { raw.removeSubrange(cut...) }
            while let last = raw.last, DotEnv.isUnicodeSpace(last) { raw.removeLast() }
            let v = interpolate(raw, key: key, valueStart: start, offsetsMapDirectly: true)
            return (v, .unquoted, min(end + 1, s.count))
        }

        mutating func interpolate(_ template: [Unicode.Scalar], key: String, valueStart: Int, offsetsMapDirectly: Bool) -> String? {
            var unsetNames: [String] = []
            let env = environment, values = document.values
            let (out, failure) = Interpolation.substitute(template, lookup: { env[$0] ?? values[$0] },
                                                          unset: { unsetNames.append($0) })
            if let failure {
                let at = offsetsMapDirectly ? valueStart + failure.offset : valueStart
                let code: Problem.Code
                switch failure {
                case .invalidTemplate: code = .invalidInterpolation
                case .requiredVariableMissing: code = .requiredVariableMissing
                case .nestedTooDeeply: code = .nestedTooDeeply
                }
                error(code, "in the value of \(key): \(failure.message)", at: at, key: key)
                return nil
            }
            let (l, c) = position(valueStart)
            for name in unsetNames {
                document.warnings.append(Problem(.unsetVariable,
                    "the value of \(key) reads \(name), which is not set; it becomes an empty string",
                    line: l, column: c, key: key))
            }
            return string(out)
        }

        func quoted(_ c: Unicode.Scalar) -> String {
            if c.value < 0x20 || c.value == 0x7F { return "U+" + String(c.value, radix: 16, uppercase: true) }
            return "'\(c)'"
        }
        func quotedCharacter(_ c: Unicode.Scalar) -> String { String(Character(c)) }
    }
}

extension String {
    fileprivate func trimmingTrailing(_ predicate: (Unicode.Scalar) -> Bool) -> String {
        var scalars = Array(unicodeScalars)
        while let last = scalars.last, predicate(last) { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
