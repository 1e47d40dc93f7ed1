import Glibc
import CSageSystem

/// The inotify event bits sagedev uses, as a typed set over the kernel's `uint32_t` mask.
public struct InotifyMask: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    private init(_ bit: Int32) { rawValue = UInt32(bitPattern: bit) }

    public static let modify = InotifyMask(IN_MODIFY)
    public static let attrib = InotifyMask(IN_ATTRIB)
    public static let closeWrite = InotifyMask(IN_CLOSE_WRITE)
    public static let movedFrom = InotifyMask(IN_MOVED_FROM)
    public static let movedTo = InotifyMask(IN_MOVED_TO)
    public static let create = InotifyMask(IN_CREATE)
    public static let delete = InotifyMask(IN_DELETE)
    public static let deleteSelf = InotifyMask(IN_DELETE_SELF)
    public static let moveSelf = InotifyMask(IN_MOVE_SELF)
    // Flags for inotify_add_watch.
    public static let onlyDirectory = InotifyMask(IN_ONLYDIR)
    public static let dontFollow = InotifyMask(IN_DONT_FOLLOW)
    public static let excludeUnlinked = InotifyMask(IN_EXCL_UNLINK)
    // Bits only the kernel sets in events.
    public static let isDirectory = InotifyMask(IN_ISDIR)
    public static let queueOverflow = InotifyMask(IN_Q_OVERFLOW)
    public static let ignored = InotifyMask(IN_IGNORED)
    public static let unmount = InotifyMask(IN_UNMOUNT)

    /// Everything that means "the contents of this directory changed", plus the directory itself going away.
    public static let directoryChanges: InotifyMask = [
        .modify, .attrib, .closeWrite, .movedFrom, .movedTo, .create, .delete, .deleteSelf, .moveSelf,
        .onlyDirectory, .excludeUnlinked,
    ]
}

/// One decoded `struct inotify_event`.
public struct InotifyEvent: Sendable, Equatable {
    /// The watch descriptor; -1 for a queue overflow.
    public var watch: Int32
    public var mask: InotifyMask
    /// Pairs IN_MOVED_FROM with its IN_MOVED_TO.
    public var cookie: UInt32
    /// The entry's name inside the watched directory; empty for events about the directory itself.
    public var name: String

    public init(watch: Int32, mask: InotifyMask, cookie: UInt32 = 0, name: String = "") {
        self.watch = watch; self.mask = mask; self.cookie = cookie; self.name = name
    }
    public var isDirectory: Bool { mask.contains(.isDirectory) }
    /// The kernel dropped events: the queue (fs.inotify.max_queued_events) was full.
    public var isOverflow: Bool { mask.contains(.queueOverflow) }
    /// The watch is gone (removed explicitly, or its directory was deleted or unmounted).
    public var isIgnored: Bool { mask.contains(.ignored) }
}

/// A thin owner of one inotify instance: non-blocking and close-on-exec, so a daemon can poll its fd.
/// Calls may come from several threads; the watch bookkeeping is locked.
public final class Inotify: @unchecked Sendable {
    private let lock = Lock()
    private var fd: Int32
    private var watches = Set<Int32>()
    private var buffer = [UInt8]()
    /// A cap below the kernel's limit, so tests can exhaust "the limit" without lowering the sysctl for everyone.
    public let watchBudget: Int?

    public init(watchBudget: Int? = nil) throws {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            let e = csage_errno()
            if e == EMFILE {
                let limit = Inotify.readProcInt("/proc/sys/fs/inotify/max_user_instances").map(String.init) ?? "unknown"
                throw SystemError(.tooLarge,
                    "inotify_init1: this user already has the maximum number of inotify instances "
                    + "(fs.inotify.max_user_instances = \(limit)); close other watchers or raise it with "
                    + "`sudo sysctl fs.inotify.max_user_instances=\(max(512, (Int(limit) ?? 128) * 2))`", errno: e)
            }
            throw SystemError.fromErrno("inotify_init1", "(new instance)", errno: e)
        }
        self.fd = fd
        self.watchBudget = watchBudget
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// The descriptor to poll for POLLIN; -1 once closed.
    public var fileDescriptor: Int32 { lock.locked { fd } }
    /// Watches currently held by this instance.
    public var watchCount: Int { lock.locked { watches.count } }

    public func close() {
        lock.locked {
            if fd >= 0 { Glibc.close(fd); fd = -1 }
            watches.removeAll()
        }
    }

    /// Adds (or updates) a watch. Adding a path whose inode is already watched returns the same descriptor.
    /// Running out of watches throws `.tooLarge` with errno ENOSPC and a message naming the sysctl to raise.
    public func addWatch(_ path: String, mask: InotifyMask) throws -> Int32 {
        try lock.locked {
            guard fd >= 0 else { throw SystemError(.closed, "inotify_add_watch \(path): the inotify instance is closed") }
            let wd = inotify_add_watch(fd, path, mask.rawValue)
            if wd < 0 {
                let e = csage_errno()
                if e == ENOSPC {
                    throw Inotify.watchLimitError(path: path, needed: watches.count + 1, held: watches.count, budget: watchBudget)
                }
                throw SystemError.fromErrno("inotify_add_watch", path, errno: e)
            }
            if !watches.contains(wd), let budget = watchBudget, watches.count >= budget {
                inotify_rm_watch(fd, wd)
                throw Inotify.watchLimitError(path: path, needed: watches.count + 1, held: watches.count, budget: budget)
            }
            watches.insert(wd)
            return wd
        }
    }

    /// Removes a watch; a descriptor the kernel already dropped is not an error.
    public func removeWatch(_ wd: Int32) {
        lock.locked {
            guard watches.remove(wd) != nil, fd >= 0 else { return }
            inotify_rm_watch(fd, wd)
        }
    }

    /// Reads what is queued now, without blocking: [] when nothing is. IN_IGNORED events also drop the
    /// watch from `watchCount`. One call reads at most `bufferSize` bytes; call again until it returns [].
    public func readEvents(bufferSize: Int = 64 * 1024) throws -> [InotifyEvent] {
        try lock.locked {
            guard fd >= 0 else { throw SystemError(.closed, "read inotify events: the inotify instance is closed") }
            // Large enough for at least one event with a NAME_MAX name.
            let size = max(bufferSize, MemoryLayout<inotify_event>.size + 256)
            if buffer.count != size { buffer = [UInt8](repeating: 0, count: size) }
            while true {
                let n = self.buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
                if n > 0 {
                    let events = self.buffer.withUnsafeBytes { Inotify.decode(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    for event in events where event.isIgnored { watches.remove(event.watch) }
                    return events
                }
                if n == 0 { return [] }
                let e = csage_errno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return [] }
                throw SystemError.fromErrno("read inotify events from fd", "\(fd)", errno: e)
            }
        }
    }

    /// Waits until events are queued or the deadline passes; true when readable.
    public func wait(until deadline: Deadline) throws -> Bool {
        let fd = fileDescriptor
        guard fd >= 0 else { throw SystemError(.closed, "wait for inotify events: the inotify instance is closed") }
        return try Inotify.pollReadable(fd, until: deadline)
    }

    /// poll(2) for POLLIN on any fd, retrying EINTR, until the deadline.
    public static func pollReadable(_ fd: Int32, until deadline: Deadline) throws -> Bool {
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, deadline.remainingMilliseconds)
            if r > 0 { return true }
            if r == 0 { if deadline.hasPassed { return false } else { continue } }
            let e = csage_errno()
            if e == EINTR { continue }
            throw SystemError.fromErrno("poll fd", "\(fd)", errno: e)
        }
    }

    /// Decodes a buffer of `struct inotify_event` records; a truncated trailing record is dropped.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> [InotifyEvent] {
        var out = [InotifyEvent]()
        let header = 16  // int wd; uint32_t mask, cookie, len
        var offset = 0
        while offset + header <= bytes.count {
            let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let cookie = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            let len = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            guard offset + header + len <= bytes.count else { break }
            var name = ""
            if len > 0 {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[(offset + header)..<(offset + header + len)])
                let end = raw.firstIndex(of: 0) ?? raw.count
                name = String(decoding: raw[0..<end], as: UTF8.self)
            }
            out.append(InotifyEvent(watch: wd, mask: InotifyMask(rawValue: mask), cookie: cookie, name: name))
            offset += header + len
        }
        return out
    }

    /// fs.inotify.max_user_watches: how many watches one user may hold across all processes.
    public static func maxUserWatches() -> Int? { readProcInt("/proc/sys/fs/inotify/max_user_watches") }
    /// fs.inotify.max_queued_events: how many events queue up before the kernel reports IN_Q_OVERFLOW.
    public static func maxQueuedEvents() -> Int? { readProcInt("/proc/sys/fs/inotify/max_queued_events") }

    /// The error for "not enough watches": how many are needed, how many are held, the limit, and the sysctl.
    /// `budget` is the caller's own cap, when one was set below the kernel's.
    public static func watchLimitError(path: String, needed: Int, held: Int, budget: Int? = nil) -> SystemError {
        let sysctlLimit = maxUserWatches()
        let namespaceLimit = readProcInt("/proc/sys/user/max_inotify_watches")
        let limitText: String
        if let budget {
            limitText = "the watch budget of \(budget)"
        } else if let namespaceLimit, let sysctlLimit, namespaceLimit < sysctlLimit {
            // Inside a container or user namespace the lower, per-namespace limit applies.
            limitText = "\(namespaceLimit) in this user namespace (/proc/sys/user/max_inotify_watches); "
                + "fs.inotify.max_user_watches = \(sysctlLimit)"
        } else if let sysctlLimit {
            limitText = "fs.inotify.max_user_watches = \(sysctlLimit), shared by every process of this user"
        } else {
            limitText = "fs.inotify.max_user_watches"
        }
        let suggested = suggestedWatchLimit(current: budget ?? [namespaceLimit, sysctlLimit].compactMap { $0 }.min() ?? 8192,
                                            needed: needed)
        return SystemError(.tooLarge,
            "inotify watch limit reached while watching \(path): \(needed) watches are needed, "
            + "this watcher holds \(held) (limit: \(limitText)). Raise the limit with "
            + "`sudo sysctl fs.inotify.max_user_watches=\(suggested)` (persist it in /etc/sysctl.d/), "
            + "or exclude directories with SAGEDEV_WATCH_IGNORE",
            errno: ENOSPC)
    }

    /// A round value comfortably above current + needed (the limit is shared with editors and other watchers).
    public static func suggestedWatchLimit(current: Int, needed: Int) -> Int {
        var value = 1
        while value < max(0, current) + needed { value <<= 1 }
        return max(524_288, value)
    }

    static func readProcInt(_ path: String) -> Int? {
        guard let text = FileDescriptor.readText(path) else { return nil }
        return Int(text.filter { !$0.isWhitespace })
    }
}

/// What the watcher remembers about a directory entry, to tell after an overflow what changed.
public struct FileStamp: Sendable, Equatable {
    public var inode: UInt64
    public var size: Int64
    public var modifiedNanoseconds: Int64
    public var changedNanoseconds: Int64
    public var isDirectory: Bool
    public var isSymbolicLink: Bool

    public init(inode: UInt64, size: Int64, modifiedNanoseconds: Int64, changedNanoseconds: Int64,
                isDirectory: Bool, isSymbolicLink: Bool) {
        self.inode = inode; self.size = size; self.modifiedNanoseconds = modifiedNanoseconds
        self.changedNanoseconds = changedNanoseconds; self.isDirectory = isDirectory; self.isSymbolicLink = isSymbolicLink
    }

    /// stat(2): a symbolic link is followed to what it names. nil when that does not exist.
    public static func following(_ path: String) -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStamp(st)
    }

    /// lstat(2): symbolic links are described, not followed. nil when the path does not exist.
    public static func of(_ path: String) -> FileStamp? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return FileStamp(st)
    }

    init(_ st: stat) {
        let kind = st.st_mode & S_IFMT
        self.init(inode: UInt64(st.st_ino), size: Int64(st.st_size),
                  modifiedNanoseconds: Int64(st.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_mtim.tv_nsec),
                  changedNanoseconds: Int64(st.st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_ctim.tv_nsec),
                  isDirectory: kind == S_IFDIR, isSymbolicLink: kind == S_IFLNK)
    }
}

/// Directory listing for the watcher's scans.
public enum DirectoryScan {
    /// Names of the subdirectories of a directory (without . and ..), as readdir's entry type reports them:
    /// symbolic links are not followed. nil when the directory cannot be opened.
    public static func subdirectoryNames(of path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            var nameBuffer = entry.pointee.d_name
            let name = withUnsafeBytes(of: &nameBuffer) { raw -> String in
                let end = raw.firstIndex(of: 0) ?? raw.count
                return String(decoding: raw[0..<end], as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            out.append(name)
        }
        return out
    }

    /// The entries of a directory (without . and ..) with their lstat stamps. An entry that vanishes
    /// between readdir and lstat is left out.
    public static func entries(of path: String) throws -> [(name: String, stamp: FileStamp)] {
        guard let dir = opendir(path) else { throw SystemError.fromErrno("open directory", path) }
        defer { closedir(dir) }
        let dirFD = dirfd(dir)
        var out = [(name: String, stamp: FileStamp)]()
        while let entry = readdir(dir) {
            var nameBuffer = entry.pointee.d_name
            let name = withUnsafeBytes(of: &nameBuffer) { raw -> String in
                let end = raw.firstIndex(of: 0) ?? raw.count
                return String(decoding: raw[0..<end], as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var st = stat()
            guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            out.append((name, FileStamp(st)))
        }
        return out
    }
}
