import SageSystem

/// The git branch a directory is checked out on, read from the files (no `git` process): the nearest `.git` upwards
/// is either the repository's directory or, in a linked worktree, a file naming its `gitdir:`.
public enum GitCheckout {
    /// "main", "feature/x", "detached at 1a2b3c4"; nil when the directory is not inside a git checkout.
    public static func branch(of directory: String) -> String? {
        var dir = directory
        while true {
            let dotGit = (dir == "/" ? "" : dir) + "/.git"
            if FileDescriptor.isDirectory(dotGit) { return head(gitDirectory: dotGit) }
            if let text = FileDescriptor.readText(dotGit), let line = text.split(separator: "\n").first, line.hasPrefix("gitdir:") {
                var gitDir = String(line.dropFirst("gitdir:".count))
                while gitDir.first == " " { gitDir.removeFirst() }
                if !gitDir.hasPrefix("/") { gitDir = dir + "/" + gitDir }
                return head(gitDirectory: gitDir)
            }
            guard dir != "/", let slash = dir.lastIndex(of: "/") else { return nil }
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
        }
    }

    /// The branch HEAD names, from the text of a HEAD file.
    public static func parseHead(_ text: String) -> String? {
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        if line.hasPrefix("ref: ") {
            let ref = String(line.dropFirst(5))
            return ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : ref
        }
        let hex = line.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
        return hex && line.count >= 7 ? "detached at \(line.prefix(7))" : nil
    }

    static func head(gitDirectory: String) -> String? {
        FileDescriptor.readText(gitDirectory + "/HEAD").flatMap(parseHead)
    }
}
