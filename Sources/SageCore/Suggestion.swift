/// "Did you mean" by edit distance, case-insensitive: for .env keys, commands, options and service names.
public enum Suggestion {
    public static func closest(to word: String, among candidates: [String]) -> String? {
        var best: (String, Int)? = nil
        for c in candidates where c != word {
            let d = distance(word.uppercased(), c.uppercased())
            if d <= max(2, c.count / 4), best == nil || d < best!.1 { best = (c, d) }
        }
        return best?.0
    }

    public static func list(_ options: [String]) -> String {
        guard options.count > 1 else { return options.first ?? "" }
        return options.dropLast().joined(separator: ", ") + " or " + options.last!
    }

    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
