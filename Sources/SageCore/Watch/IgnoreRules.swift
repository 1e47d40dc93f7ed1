/// Which paths the watcher leaves alone, written in `.dockerignore` syntax and matched the way Docker
/// matches them (moby's patternmatcher):
/// - paths are relative to a base directory (the project directory), with `/` separators;
/// - `*` matches any run of characters except `/`, `?` one character except `/`, `[a-z]` / `[^a-z]` a class,
///   and `\` escapes the next character;
/// - `**` matches any number of whole directories, including none (`**/x` matches `x` and `a/b/x`);
///   a trailing `**` matches everything below;
/// - a pattern without `**` is anchored at the base: `*.log` matches `a.log`, not `src/a.log`
///   (write `**/*.log` for any depth);
/// - a leading `/` and a trailing `/` change nothing (`/dist/` is `dist`);
/// - a pattern that matches a directory excludes everything below it;
/// - `!pattern` re-includes what earlier patterns excluded; the last matching pattern wins.
///
/// Matching runs on every inotify event, so it works on UTF-8 bytes, and the usual shapes (`name`, `a/b`,
/// `**/name`) take a direct path without the general matcher.
public struct IgnoreRules: Sendable, Equatable {
    /// Excluded unless a later `!` pattern re-includes them: at any depth.
    public static let defaultPatterns = ["**/node_modules", "**/.git", "**/dist", "**/build", "**/.sagedev"]

    public struct Pattern: Sendable, Equatable {
        /// As written by the user.
        public let source: String
        /// After cleaning (no `!`, no leading or trailing `/`, no `.` or empty segments).
        public let cleaned: String
        public let isNegation: Bool
        fileprivate let shape: Shape
        fileprivate let segments: [[Token]?]  // per `/`-segment, nil for segments holding `**`
    }

    public struct InvalidPattern: Sendable, Equatable {
        public let pattern: String
        public let reason: String
    }

    public private(set) var patterns: [Pattern] = []
    /// Patterns that were dropped because they cannot be parsed (an unterminated `[`, a lone `!`, a trailing `\`).
    public private(set) var invalidPatterns: [InvalidPattern] = []
    private var hasNegations = false

    /// The default excludes followed by `patterns` (so a user's `!dist` can re-include a root `dist`).
    public init(_ patterns: [String] = [], includeDefaults: Bool = true) {
        for source in (includeDefaults ? IgnoreRules.defaultPatterns : []) + patterns {
            switch IgnoreRules.compile(source) {
            case .none: continue
            case .pattern(let p): self.patterns.append(p); if p.isNegation { hasNegations = true }
            case .invalid(let reason): invalidPatterns.append(InvalidPattern(pattern: source, reason: reason))
            }
        }
    }

    /// The patterns of a `.dockerignore` file: one per line, `#` comments and blank lines skipped.
    public static func parseDockerignore(_ text: String) -> [String] {
        var out = [String]()
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            var line = String(raw)
            if line.hasPrefix("\u{FEFF}") { line.removeFirst() }
            let trimmed = trim(line)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            out.append(trimmed)
        }
        return out
    }

    /// Why a pattern cannot be used, or nil when it is fine (for configuration validation).
    public static func problem(in pattern: String) -> String? {
        if case .invalid(let reason) = compile(pattern) { return reason }
        return nil
    }

    /// Whether a path (relative to the base, `/`-separated) is excluded.
    public func isExcluded(_ relativePath: String) -> Bool {
        if patterns.isEmpty { return false }
        let path = Array(IgnoreRules.needsCleaning(relativePath) ? IgnoreRules.clean(relativePath).utf8 : relativePath.utf8)
        if path.isEmpty { return false }
        var steps = 0
        return path.withUnsafeBufferPointer { isExcluded(bytes: $0, steps: &steps) }
    }

    /// `isExcluded`, and how many matching steps it took (a test bounds the work on adversarial patterns).
    func exclusionWork(_ relativePath: String) -> (excluded: Bool, steps: Int) {
        var steps = 0
        let path = Array(IgnoreRules.clean(relativePath).utf8)
        let excluded = path.withUnsafeBufferPointer { isExcluded(bytes: $0, steps: &steps) }
        return (excluded, steps)
    }

    /// Whether the watcher may skip a directory without looking inside: it is excluded, and no `!` pattern
    /// could re-include anything below it.
    public func skipsDirectory(_ relativePath: String) -> Bool {
        guard isExcluded(relativePath) else { return false }
        guard hasNegations else { return true }
        let dir = IgnoreRules.clean(relativePath).split(separator: "/").map { Array($0.utf8) }
        for pattern in patterns where pattern.isNegation && IgnoreRules.couldMatchBelow(pattern, dir) { return false }
        return true
    }

    private func isExcluded(bytes path: UnsafeBufferPointer<UInt8>, steps: inout Int) -> Bool {
        var matched = false
        for pattern in patterns {
            // An include pattern cannot change an excluded path, nor an exclusion an included one.
            if pattern.isNegation != matched { continue }
            if IgnoreRules.matchesPathOrParent(pattern.shape, path, steps: &steps) { matched = !pattern.isNegation }
        }
        return matched
    }

    // MARK: compiling

    fileprivate enum Token: Sendable, Equatable {
        case literal([UInt8])             // a run of plain bytes
        case anyCharacter                 // ?
        case anyRun                       // *
        case anyDirectories               // ** not at the end: (.*/)?
        case anything                     // ** at the end: .*
        case characterClass(negated: Bool, items: [ClassItem])
    }
    fileprivate enum ClassItem: Sendable, Equatable {
        case single(UInt32)
        case range(UInt32, UInt32)
    }
    fileprivate enum Shape: Sendable, Equatable {
        case exact([UInt8])               // no wildcard: the path or one of its parents equals it
        case nameAtAnyDepth([UInt8])      // **/name: some component equals name
        /// `memoize`: with three or more stars plain backtracking can go exponential; with fewer it cannot.
        case general([Token], memoize: Bool)
    }
    private enum Compiled { case none, pattern(Pattern), invalid(String) }

    private static func compile(_ source: String) -> Compiled {
        var text = trim(source)
        if text.isEmpty { return .none }
        var negation = false
        if text.hasPrefix("!") {
            negation = true
            text = trim(String(text.dropFirst()))
            if text.isEmpty { return .invalid("a lone \"!\" excludes nothing; write !<pattern>") }
        }
        let cleaned = clean(text)
        if cleaned.isEmpty { return .invalid("\"\(source)\" names the base directory itself, which is never excluded") }
        guard let tokens = tokenize(Array(cleaned.unicodeScalars)) else {
            return .invalid("\"\(source)\" has an unterminated [ class or a trailing \\")
        }
        let shape: Shape
        switch tokens.count {
        case 1:
            if case .literal(let bytes) = tokens[0] { shape = .exact(bytes) } else { shape = .general(tokens, memoize: false) }
        case 2:
            if case .anyDirectories = tokens[0], case .literal(let name) = tokens[1], !name.contains(slash) {
                shape = .nameAtAnyDepth(name)
            } else {
                shape = .general(tokens, memoize: false)
            }
        default:
            let stars = tokens.filter { $0 == .anyRun || $0 == .anyDirectories }.count
            shape = .general(tokens, memoize: stars >= 3)
        }
        let segments: [[Token]?] = cleaned.split(separator: "/", omittingEmptySubsequences: false).map { seg in
            seg.contains("**") ? nil : tokenize(Array(seg.unicodeScalars))
        }
        return .pattern(Pattern(source: source, cleaned: cleaned, isNegation: negation, shape: shape, segments: segments))
    }

    private static func tokenize(_ s: [Unicode.Scalar]) -> [Token]? {
        var tokens = [Token]()
        func literal(_ c: Unicode.Scalar) {
            let bytes = Array(String(c).utf8)
            if case .literal(let run)? = tokens.last { tokens[tokens.count - 1] = .literal(run + bytes) }
            else { tokens.append(.literal(bytes)) }
        }
        var i = 0
        while i < s.count {
            let c = s[i]
            switch c {
            case "*":
                if i + 1 < s.count && s[i + 1] == "*" {
                    i += 2
                    if i < s.count && s[i] == "/" { i += 1 }  // "**/" is "**"
                    tokens.append(i == s.count ? .anything : .anyDirectories)
                    continue
                }
                tokens.append(.anyRun)
            case "?":
                tokens.append(.anyCharacter)
            case "\\":
                guard i + 1 < s.count else { return nil }
                i += 1
                literal(s[i])
            case "[":
                var j = i + 1
                var negated = false
                if j < s.count && s[j] == "^" { negated = true; j += 1 }
                var items = [ClassItem]()
                var closed = false
                var first = true
                while j < s.count {
                    var item = s[j]
                    if item == "]" && !first { closed = true; break }
                    first = false
                    if item == "\\" {
                        guard j + 1 < s.count else { return nil }
                        j += 1; item = s[j]
                    }
                    if j + 2 < s.count && s[j + 1] == "-" && s[j + 2] != "]" {
                        var upper = s[j + 2]
                        j += 2
                        if upper == "\\" {
                            guard j + 1 < s.count else { return nil }
                            j += 1; upper = s[j]
                        }
                        items.append(.range(item.value, upper.value))
                    } else {
                        items.append(.single(item.value))
                    }
                    j += 1
                }
                guard closed else { return nil }
                tokens.append(.characterClass(negated: negated, items: items))
                i = j
            default:
                literal(c)
            }
            i += 1
        }
        return tokens
    }

    // MARK: matching

    private static let slash = UInt8(ascii: "/")

    /// Docker's MatchesOrParentMatches for one pattern: the path itself, or any of its parent directories.
    private static func matchesPathOrParent(_ shape: Shape, _ path: UnsafeBufferPointer<UInt8>, steps: inout Int) -> Bool {
        switch shape {
        case .exact(let literal):
            guard path.count >= literal.count else { return false }
            for i in 0..<literal.count where path[i] != literal[i] { return false }
            return path.count == literal.count || path[literal.count] == slash
        case .nameAtAnyDepth(let name):
            var start = 0
            while start <= path.count {
                var end = start
                while end < path.count && path[end] != slash { end += 1 }
                if end - start == name.count {
                    var equal = true
                    for k in 0..<name.count where path[start + k] != name[k] { equal = false; break }
                    if equal { return true }
                }
                start = end + 1
            }
            return false
        case .general(let tokens, let memoize):
            var memo = [UInt8]()
            if matches(tokens, path, count: path.count, memoize: memoize, memo: &memo, steps: &steps) { return true }
            for end in 0..<path.count where path[end] == slash {
                memo.removeAll(keepingCapacity: true)
                if matches(tokens, path, count: end, memoize: memoize, memo: &memo, steps: &steps) { return true }
            }
            return false
        }
    }

    /// Whether the first `count` bytes of `s` match all of `tokens`. `memo` remembers failed
    /// (token, position) pairs, so patterns with several stars stay polynomial.
    private static func matches(_ tokens: [Token], _ s: UnsafeBufferPointer<UInt8>, count n: Int, memoize: Bool,
                                memo: inout [UInt8], steps: inout Int) -> Bool {
        func match(_ ti: Int, _ si: Int, _ memo: inout [UInt8], _ steps: inout Int) -> Bool {
            steps += 1
            var ti = ti, si = si
            // Straight-line tokens need no memo; stars do.
            while ti < tokens.count {
                switch tokens[ti] {
                case .literal(let bytes):
                    guard n - si >= bytes.count else { return false }
                    for k in 0..<bytes.count where s[si + k] != bytes[k] { return false }
                    si += bytes.count
                case .anyCharacter:
                    guard si < n, s[si] != slash else { return false }
                    si += scalarLength(s, si, n)
                case .characterClass(let negated, let items):
                    guard si < n else { return false }
                    let (value, length) = decodeScalar(s, si, n)
                    guard classContains(items, value) != negated else { return false }
                    si += length
                case .anything:
                    return true
                case .anyRun, .anyDirectories:
                    let key = ti * (n + 1) + si
                    if memoize {
                        if memo.isEmpty { memo = [UInt8](repeating: 0, count: (tokens.count + 1) * (n + 1)) }
                        if memo[key] != 0 { return false }
                    }
                    var k = si
                    if case .anyRun = tokens[ti] {
                        while true {
                            if match(ti + 1, k, &memo, &steps) { return true }
                            if k >= n || s[k] == slash { break }
                            k += scalarLength(s, k, n)
                        }
                    } else {
                        if match(ti + 1, si, &memo, &steps) { return true }
                        while k < n {
                            if s[k] == slash && match(ti + 1, k + 1, &memo, &steps) { return true }
                            k += 1
                        }
                    }
                    if memoize { memo[key] = 1 }
                    return false
                }
                ti += 1
            }
            return si == n
        }
        return match(0, 0, &memo, &steps)
    }

    private static func scalarLength(_ s: UnsafeBufferPointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let b = s[i]
        let length = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
        return min(length, n - i)
    }

    private static func decodeScalar(_ s: UnsafeBufferPointer<UInt8>, _ i: Int, _ n: Int) -> (UInt32, Int) {
        let length = scalarLength(s, i, n)
        if length == 1 { return (UInt32(s[i]), 1) }
        var value = UInt32(s[i]) & (0xFF >> (length + 1))
        for k in 1..<length { value = value << 6 | UInt32(s[i + k] & 0x3F) }
        return (value, length)
    }

    private static func classContains(_ items: [ClassItem], _ c: UInt32) -> Bool {
        for item in items {
            switch item {
            case .single(let x): if x == c { return true }
            case .range(let lo, let hi): if lo <= c && c <= hi { return true }
            }
        }
        return false
    }

    /// Conservative: true unless the pattern's leading segments rule out every path below `dir`.
    private static func couldMatchBelow(_ pattern: Pattern, _ dir: [[UInt8]]) -> Bool {
        for (i, component) in dir.enumerated() {
            guard i < pattern.segments.count else { return false }
            guard let segment = pattern.segments[i] else { return true }  // a ** segment can reach anywhere
            var memo = [UInt8]()
            var steps = 0
            let ok = component.withUnsafeBufferPointer { matches(segment, $0, count: $0.count, memoize: true, memo: &memo, steps: &steps) }
            if !ok { return false }
        }
        return pattern.segments.count > dir.count
    }

    // MARK: paths

    private static func needsCleaning(_ path: String) -> Bool {
        var previous: UInt8 = slash  // a leading "/" or "./" needs cleaning too
        for b in path.utf8 {
            if b == slash && (previous == slash || previous == UInt8(ascii: ".")) { return true }
            previous = b
        }
        return previous == slash || previous == UInt8(ascii: ".")
    }

    /// Go's filepath.Clean for relative slash paths, without the leading slash: drops empty and "." segments,
    /// resolves ".." where it can. An empty result means the base itself.
    static func clean(_ path: String) -> String {
        var parts = [Substring]()
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    private static func trim(_ s: String) -> String {
        var scalars = Substring(s)
        while let f = scalars.first, f.isWhitespace { scalars.removeFirst() }
        while let l = scalars.last, l.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
