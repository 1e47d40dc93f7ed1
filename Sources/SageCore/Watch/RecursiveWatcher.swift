import SageSystem

/// Watches directory trees (and single files) with one inotify instance and reports what changed as
/// `ChangedPath`s. It never blocks on its own: the daemon polls `fileDescriptor` for POLLIN in its event loop
/// (or a DispatchSource) and calls `readEvents()` / `drain()`, which read whatever is queued and return.
///
/// - New directories get a watch as they appear, and are listed right after, so files written before the
///   watch landed are reported too.
/// - Excluded directories (`IgnoreRules`) get no watch at all; excluded files are not reported.
/// - When the kernel queue overflows (IN_Q_OVERFLOW), every watched tree is rescanned and compared with what
///   the watcher last knew of it (inode, size, mtime, ctime per entry), so no change is lost.
/// - Running out of watches is reported with the number needed and the sysctl that raises the limit.
///   Watches added before that stay in place.
/// - Symbolic links are reported as entries but never followed into, so link cycles cannot trap it.
///
/// Thread-safe: every call takes an internal lock.
public final class RecursiveWatcher: @unchecked Sendable {
    /// What ran out, for `status` and logs.
    public struct WatchLimitReport: Sendable, Equatable {
        /// The tree or directory being watched when the watches ran out.
        public var path: String
        /// Watches this watcher needs in all to cover its trees.
        public var needed: Int
        /// Watches it holds.
        public var held: Int
        /// The message for people, naming the sysctl.
        public var error: SystemError
    }

    public struct Statistics: Sendable, Equatable {
        public var watches: Int
        public var directories: Int
        public var entries: Int
        public var overflows: Int
        public var rescans: Int
    }

    private struct WatchedDirectory {
        var path: String
        /// The tree this directory belongs to; nil for a directory watched only for some files in it.
        var root: String?
        /// For file watches: the only names reported. nil means every entry (a tree directory).
        var only: Set<String>?
        var entries: [String: FileStamp] = [:]
    }

    private let lock = Lock()
    private let inotify: Inotify
    public let ignore: IgnoreRules
    /// Paths below this directory are matched against `ignore` relative to it (the project directory);
    /// paths elsewhere relative to the root of their tree.
    public let ignoreBase: String?

    private var directories: [Int32: WatchedDirectory] = [:]
    private var watchByPath: [String: Int32] = [:]
    private var roots: [String] = []
    private var overflows = 0
    private var rescans = 0
    private var limitReport: WatchLimitReport?

    /// - Parameter maxWatches: a budget below the kernel's fs.inotify.max_user_watches; exceeding it is
    ///   reported exactly like the kernel limit (tests use it instead of lowering the sysctl for everyone).
    public init(ignore: IgnoreRules = IgnoreRules(), ignoreBase: String? = nil, maxWatches: Int? = nil) throws {
        self.inotify = try Inotify(watchBudget: maxWatches)
        self.ignore = ignore
        self.ignoreBase = ignoreBase.map(WatchLayout.normalize)
    }

    /// Poll this for POLLIN; -1 once closed.
    public var fileDescriptor: Int32 { inotify.fileDescriptor }
    /// inotify watches held now (one per watched directory).
    public var watchCount: Int { inotify.watchCount }
    /// Set when a directory could not be watched because the watch limit ran out (initially or later).
    public var watchLimitReport: WatchLimitReport? { lock.locked { limitReport } }
    public var statistics: Statistics {
        lock.locked {
            Statistics(watches: inotify.watchCount, directories: directories.count,
                       entries: directories.values.reduce(0) { $0 + $1.entries.count },
                       overflows: overflows, rescans: rescans)
        }
    }

    public func close() {
        lock.locked {
            inotify.close()
            directories.removeAll()
            watchByPath.removeAll()
        }
    }

    /// Watches the trees of a layout and its `.env`. Returns the trees that do not exist (they are skipped).
    @discardableResult
    public func watch(_ layout: WatchLayout) throws -> [String] {
        var missing = [String]()
        for tree in layout.trees {
            if FileDescriptor.isDirectory(tree) { try watchTree(tree) } else { missing.append(tree) }
        }
        if let env = layout.envFile { try watchFile(env) }
        return missing
    }

    /// Watches a directory and everything below it that the ignore rules leave in.
    /// Throws `.notFound` when it is not a directory, and `.tooLarge` (errno ENOSPC) when the watches run
    /// out, with the number needed for the whole tree.
    public func watchTree(_ path: String) throws {
        let root = WatchLayout.normalize(path)
        guard FileDescriptor.isDirectory(root) else {
            throw SystemError(.notFound, "watch \(root): no such directory; create it or fix the directory setting in .env")
        }
        try lock.locked {
            if !roots.contains(root) { roots.append(root) }
            var ignoredChanges = [ChangedPath]()
            if let report = sync(root, root: root, report: false, into: &ignoredChanges) {
                throw report.error
            }
        }
    }

    /// Watches one file through its directory, so replacing it (write to a temp file, rename over) is seen.
    /// Only this name is reported from that directory unless the directory is also part of a tree.
    public func watchFile(_ path: String) throws {
        let file = WatchLayout.normalize(path)
        guard let slash = file.lastIndex(of: "/") else {
            throw SystemError(.invalidAddress, "watch \(file): expected an absolute path")
        }
        let parent = slash == file.startIndex ? "/" : String(file[..<slash])
        let name = String(file[file.index(after: slash)...])
        try lock.locked {
            if let wd = watchByPath[parent], var dir = directories[wd] {
                if dir.only != nil {
                    dir.only!.insert(name)
                    dir.entries[name] = FileStamp.of(file)
                    directories[wd] = dir
                }
                return
            }
            let wd: Int32
            do {
                wd = try inotify.addWatch(parent, mask: .directoryChanges)
            } catch let error as SystemError where error.code == .tooLarge {
                let report = WatchLimitReport(path: file, needed: inotify.watchCount + 1, held: inotify.watchCount,
                                              error: error)
                limitReport = report
                throw error
            }
            var dir = WatchedDirectory(path: parent, root: nil, only: [name])
            dir.entries[name] = FileStamp.of(file)
            directories[wd] = dir
            watchByPath[parent] = wd
        }
    }

    /// Reads everything queued now without blocking and returns what changed ([] when nothing did, or only
    /// excluded paths did). Handles new directories, removed ones and queue overflows on the way.
    public func readEvents() throws -> [ChangedPath] {
        try lock.locked {
            var changes = [ChangedPath]()
            var overflowed = false
            var touched = [(wd: Int32, name: String)]()
            // Bounded so one call cannot starve the daemon's loop; the fd stays readable if more is queued.
            for _ in 0..<64 {
                let events = try inotify.readEvents()
                if events.isEmpty { break }
                for event in events {
                    if event.isOverflow { overflowed = true; continue }
                    handle(event, into: &changes, touched: &touched)
                }
            }
            for (wd, name) in touched {
                guard var dir = directories[wd] else { continue }
                dir.entries[name] = FileStamp.of(dir.path + "/" + name)
                directories[wd] = dir
            }
            if overflowed {
                overflows += 1
                rescanAll(into: &changes)
            }
            return changes
        }
    }

    /// The same as `readEvents()`, named for the daemon's loop: call it when the fd polls readable.
    public func drain() throws -> [ChangedPath] { try readEvents() }

    /// Blocks until something changed or the deadline passed ([] then). For tests and simple tools; the
    /// daemon polls `fileDescriptor` itself.
    public func next(deadline: Deadline) throws -> [ChangedPath] {
        while true {
            let changes = try readEvents()
            if !changes.isEmpty { return changes }
            if deadline.hasPassed { return [] }
            let fd = fileDescriptor
            guard fd >= 0 else { throw SystemError(.closed, "wait for file changes: the watcher is closed") }
            if try !Inotify.pollReadable(fd, until: deadline) { return [] }
        }
    }

    /// Rescans every tree now, as after an overflow (for callers that suspect missed events).
    public func rescan() -> [ChangedPath] {
        lock.locked {
            var changes = [ChangedPath]()
            rescanAll(into: &changes)
            return changes
        }
    }

    // MARK: events

    private func handle(_ event: InotifyEvent, into changes: inout [ChangedPath], touched: inout [(wd: Int32, name: String)]) {
        guard var dir = directories[event.watch] else { return }
        if event.isIgnored {
            forget(event.watch)
            return
        }
        if event.name.isEmpty {
            // The directory itself. A tree root that went away is reported; below a root, the parent's
            // IN_DELETE / IN_MOVED_FROM already says it.
            if event.mask.contains(.deleteSelf) || event.mask.contains(.moveSelf), roots.contains(dir.path) {
                dropSubtree(dir.path)
                changes.append(ChangedPath(dir.path, .removed, isDirectory: true))
            }
            return
        }
        let path = dir.path == "/" ? "/" + event.name : dir.path + "/" + event.name
        if let only = dir.only {
            guard only.contains(event.name) else { return }
            let kind = kind(of: event, known: dir.entries[event.name] != nil)
            if kind == .removed { dir.entries[event.name] = nil; directories[event.watch] = dir }
            else { touched.append((event.watch, event.name)) }
            changes.append(ChangedPath(path, kind, isDirectory: event.isDirectory))
            return
        }
        let root = dir.root ?? dir.path
        let relative = ignoreRelative(path, root: root)
        if event.isDirectory {
            if event.mask.contains(.create) || event.mask.contains(.movedTo) {
                if ignore.skipsDirectory(relative) { return }
                if let stamp = FileStamp.of(path) { dir.entries[event.name] = stamp; directories[event.watch] = dir }
                if !ignore.isExcluded(relative) { changes.append(ChangedPath(path, .created, isDirectory: true)) }
                // Watch it and list it: files may already be inside.
                _ = sync(path, root: root, report: true, into: &changes)
            } else if event.mask.contains(.delete) || event.mask.contains(.movedFrom) {
                let known = dir.entries.removeValue(forKey: event.name) != nil
                directories[event.watch] = dir
                dropSubtree(path)
                if known && !ignore.isExcluded(relative) { changes.append(ChangedPath(path, .removed, isDirectory: true)) }
            }
            return
        }
        if ignore.isExcluded(relative) { return }
        let kind = kind(of: event, known: dir.entries[event.name] != nil)
        if kind == .removed {
            dir.entries[event.name] = nil
            directories[event.watch] = dir
        } else if touched.last?.wd != event.watch || touched.last?.name != event.name {
            touched.append((event.watch, event.name))  // one lstat for a create-modify-close sequence
        }
        changes.append(ChangedPath(path, kind))
    }

    /// `known`: the name was there before, so a rename onto it (an editor's atomic save) replaced a file.
    private func kind(of event: InotifyEvent, known: Bool) -> ChangedPath.Kind {
        if event.mask.contains(.create) || event.mask.contains(.movedTo) { return known ? .modified : .created }
        if event.mask.contains(.delete) || event.mask.contains(.movedFrom) { return .removed }
        return .modified
    }

    // MARK: scanning

    /// Makes sure `start` and every directory below it is watched, and compares each listing with what was
    /// known. With `report`, differences become changes. Returns a report when the watches ran out.
    private func sync(_ start: String, root: String, report: Bool, into changes: inout [ChangedPath]) -> WatchLimitReport? {
        var stack = [start]
        var exhausted: SystemError?
        var unwatched = 0
        while let path = stack.popLast() {
            var wd = watchByPath[path]
            if let existing = wd, directories[existing]?.only != nil {
                directories[existing]?.only = nil  // a file-watch directory that is now part of a tree
                directories[existing]?.root = root
            }
            if wd == nil && exhausted == nil {
                do {
                    let added = try inotify.addWatch(path, mask: path == root ? .directoryChanges : [.directoryChanges, .dontFollow])
                    if let other = directories[added], other.path != path {
                        // The same directory under another name: either a bind mount (watch it once) or a
                        // rename whose IN_MOVED_FROM was lost in an overflow (the old name is stale).
                        if FileStamp.of(other.path)?.inode == FileStamp.of(path)?.inode { continue }
                        dropSubtree(other.path)
                        wd = try inotify.addWatch(path, mask: [.directoryChanges, .dontFollow])
                    } else {
                        wd = added
                    }
                    directories[wd!] = WatchedDirectory(path: path, root: root, only: nil)
                    watchByPath[path] = wd!
                } catch let error as SystemError where error.code == .tooLarge {
                    exhausted = error
                } catch {
                    continue  // vanished or unreadable meanwhile; its parent's events say what happened
                }
            }
            guard let listing = try? DirectoryScan.entries(of: path) else { continue }
            guard let watch = wd, var dir = directories[watch] else {
                // Out of watches: count what this tree still needs, watch nothing more.
                unwatched += 1
                for (name, stamp) in listing where stamp.isDirectory {
                    let child = path + "/" + name
                    if !ignore.skipsDirectory(ignoreRelative(child, root: root)) { stack.append(child) }
                }
                continue
            }
            var fresh = [String: FileStamp]()
            for (name, stamp) in listing {
                let child = path == "/" ? "/" + name : path + "/" + name
                let relative = ignoreRelative(child, root: root)
                let old = dir.entries[name]
                if let old, old.isDirectory != stamp.isDirectory {
                    // Replaced by something of the other kind: report the old one gone first.
                    if old.isDirectory { dropSubtree(child) }
                    if report && !ignore.isExcluded(relative) { changes.append(ChangedPath(child, .removed, isDirectory: old.isDirectory)) }
                    dir.entries[name] = nil
                }
                if stamp.isDirectory {
                    if ignore.skipsDirectory(relative) { continue }
                    fresh[name] = stamp
                    if report && dir.entries[name] == nil && !ignore.isExcluded(relative) {
                        changes.append(ChangedPath(child, .created, isDirectory: true))
                    }
                    stack.append(child)
                } else {
                    if ignore.isExcluded(relative) { continue }
                    fresh[name] = stamp
                    if report {
                        if let previous = dir.entries[name] {
                            if previous != stamp { changes.append(ChangedPath(child, .modified)) }
                        } else {
                            changes.append(ChangedPath(child, .created))
                        }
                    }
                }
            }
            for (name, old) in dir.entries where fresh[name] == nil {
                let child = path == "/" ? "/" + name : path + "/" + name
                if old.isDirectory { dropSubtree(child) }
                if report { changes.append(ChangedPath(child, .removed, isDirectory: old.isDirectory)) }
            }
            dir.entries = fresh
            directories[watch] = dir
        }
        guard let exhausted else { return nil }
        let held = inotify.watchCount
        let error = Inotify.watchLimitError(path: start, needed: held + unwatched, held: held, budget: inotify.watchBudget)
        let report = WatchLimitReport(path: start, needed: held + unwatched, held: held,
                                      error: SystemError(exhausted.code, error.message, errno: exhausted.errno))
        limitReport = report
        return report
    }

    private func rescanAll(into changes: inout [ChangedPath]) {
        rescans += 1
        for root in roots where FileDescriptor.isDirectory(root) {
            _ = sync(root, root: root, report: true, into: &changes)
        }
        // Directories watched only for some files.
        for (wd, var dir) in directories {
            guard let only = dir.only else { continue }
            for name in only.sorted() {
                let path = dir.path == "/" ? "/" + name : dir.path + "/" + name
                let now = FileStamp.of(path)
                switch (dir.entries[name], now) {
                case (nil, let stamp?): changes.append(ChangedPath(path, .created, isDirectory: stamp.isDirectory))
                case (let old?, nil): changes.append(ChangedPath(path, .removed, isDirectory: old.isDirectory))
                case (let old?, let stamp?) where old != stamp: changes.append(ChangedPath(path, .modified))
                default: break
                }
                dir.entries[name] = now
            }
            directories[wd] = dir
        }
    }

    /// Removes the watches of `path` and every watched directory below it.
    private func dropSubtree(_ path: String) {
        let doomed = watchByPath.filter { WatchLayout.isSameOrInside($0.key, path) }
        for (dirPath, wd) in doomed {
            // A file-watch directory outside any tree keeps its watch (its own root is elsewhere).
            if directories[wd]?.only != nil && dirPath != path { continue }
            inotify.removeWatch(wd)
            directories[wd] = nil
            watchByPath[dirPath] = nil
        }
    }

    private func forget(_ wd: Int32) {
        if let dir = directories.removeValue(forKey: wd), watchByPath[dir.path] == wd {
            watchByPath[dir.path] = nil
        }
    }

    private func ignoreRelative(_ path: String, root: String) -> String {
        if let base = ignoreBase, WatchLayout.isSameOrInside(path, base) {
            return relative(path, to: base)
        }
        return relative(path, to: root)
    }

    private func relative(_ path: String, to base: String) -> String {
        if path == base { return "" }
        if base == "/" { return String(path.dropFirst()) }
        return String(path.dropFirst(base.count + 1))
    }
}
