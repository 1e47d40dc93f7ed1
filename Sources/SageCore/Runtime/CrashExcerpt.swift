/// The lines of a crashed service's log that `status` shows: the newest ones, reaching back to the error's headline
/// when a long stack trace pushed it out of view (`Error: broken on purpose` above eleven `at …` frames, the
/// runtime's banner and the dev server's restart lines).
public enum CrashExcerpt {
    /// At most `limit` lines ending with the last one. When none of the newest `size` lines is an error headline but
    /// one of the `limit` newest is, the excerpt starts at that headline and stack frames beyond the first few are
    /// folded into one line.
    public static func lines(_ log: [String], size: Int = 20, limit: Int = 80) -> [String] {
        let newest = Array(log.suffix(size))
        if newest.contains(where: isHeadline) { return newest }
        let window = Array(log.suffix(limit))
        guard let start = window.lastIndex(where: isHeadline) else { return newest }
        var out: [String] = []
        var frames = 0, folded = 0
        for line in window[start...] {
            if isFrame(line) {
                frames += 1
                if frames > 4 { folded += 1; continue }
            } else if folded > 0 {
                out.append("    … \(folded) more frame\(folded == 1 ? "" : "s")")
                folded = 0
            }
            out.append(line)
        }
        if folded > 0 { out.append("    … \(folded) more frame\(folded == 1 ? "" : "s")") }
        return Array(out.suffix(max(size, 30)))
    }

    /// `Error: …`, `TypeError: …`, `panic: …`, `Traceback (most recent call last):`, `Fatal error: …`.
    static func isHeadline(_ line: String) -> Bool {
        let t = line.drop { $0 == " " || $0 == "\t" }
        if t.hasPrefix("Traceback (most recent call last)") || t.hasPrefix("panic:") { return true }
        guard let colon = t.firstIndex(of: ":") else { return false }
        let head = t[..<colon]
        guard !head.isEmpty, head.count <= 60, !head.contains(" ") || head.hasPrefix("Fatal error") else { return false }
        return head.hasSuffix("Error") || head.hasSuffix("Exception") || head.hasPrefix("Fatal error")
    }

    static func isFrame(_ line: String) -> Bool {
        let t = line.drop { $0 == " " || $0 == "\t" }
        return (line.first == " " || line.first == "\t") && (t.hasPrefix("at ") || t.hasPrefix("File \""))
    }
}
