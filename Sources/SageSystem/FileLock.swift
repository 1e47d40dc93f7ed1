import Glibc
import CSageSystem

/// An exclusive advisory lock on a file (flock), held through a close-on-exec fd: spawned children do not
/// inherit it, and the kernel releases it when the fd is closed or the process dies, so a crash never leaves
/// a stale lock behind. The file itself is kept (removing lock files races with the next locker).
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var fd: Int32
    private let guardLock = Lock()

    private init(path: String, fd: Int32) { self.path = path; self.fd = fd }
    deinit { release() }

    public var isHeld: Bool { guardLock.locked { fd >= 0 } }

    /// Takes the lock if it is free; nil when another holder (another process, or another FileLock here) has it.
    public static func tryAcquire(path: String) throws -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError.fromErrno("open lock file", path) }
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return FileLock(path: path, fd: fd) }
            let e = csage_errno()
            if e == EINTR { continue }
            close(fd)
            if e == EWOULDBLOCK || e == EAGAIN { return nil }
            throw SystemError.fromErrno("lock", path, errno: e)
        }
    }

    /// Waits for the lock until the deadline, retrying with short timed waits (5 ms growing to 50 ms).
    public static func acquire(path: String, deadline: Deadline) throws -> FileLock {
        var pause: Int32 = 5
        while true {
            if let lock = try tryAcquire(path: path) { return lock }
            let left = deadline.remainingMilliseconds
            if left == 0 {
                let who = holderPid(path: path).map { "process \($0)" } ?? "another process"
                throw SystemError(.timedOut, "lock \(path) is held by \(who); it was not released before the deadline (wait for it to finish, or stop it)", errno: ETIMEDOUT)
            }
            _ = poll(nil, 0, min(pause, left))
            pause = min(pause * 2, 50)
        }
    }

    /// Records the holder's pid in the lock file ("<pid>\n"), for `holderPid` and for people reading it.
    public func writeOwner(pid: Int32 = getpid()) throws {
        try guardLock.locked {
            guard fd >= 0 else { throw SystemError(.closed, "lock \(path) was already released; acquire it again before writing its owner") }
            let bytes = Array("\(pid)\n".utf8)
            guard ftruncate(fd, 0) == 0 else { throw SystemError.fromErrno("truncate lock file", path) }
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
            guard n == bytes.count else { throw SystemError.fromErrno("write owner into lock file", path) }
        }
    }

    /// The pid holding the lock on `path`, or nil when nobody holds it: the pid written by `writeOwner` when that
    /// process lives, otherwise the locking process /proc/locks reports.
    ///
    /// Whether anyone holds it is asked of the lock itself (a shared lock is refused while an exclusive one is
    /// held, by any process or open file). /proc/locks is read only when the written pid is not a live process:
    /// reading it waits for an RCU grace period (about 10 ms here), and `up` asks on every run.
    public static func holderPid(path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard isHeldExclusively(fd) else { return nil }
        let written = FileDescriptor.readText(path).flatMap { Int32($0.split(separator: "\n").first.map(String.init) ?? "") }
        if let written, written > 0, ProcFS.isAlive(pid: written, startTime: nil) { return written }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return written }
        let holders = flockHolders(inode: UInt64(st.st_ino))
        guard !holders.isEmpty else { return nil }
        // 0: a holder in another pid namespace.
        return holders.first(where: { $0 > 0 }) ?? written
    }

    /// False when a shared lock can be had (it is let go at once); true while an exclusive lock is held, or when
    /// the lock cannot be asked (then /proc/locks decides).
    private static func isHeldExclusively(_ fd: Int32) -> Bool {
        while true {
            if flock(fd, LOCK_SH | LOCK_NB) == 0 {
                _ = flock(fd, LOCK_UN)
                return false
            }
            if csage_errno() != EINTR { return true }
        }
    }

    /// Releases the lock (and closes the fd). Safe to call more than once.
    public func release() {
        guardLock.locked {
            guard fd >= 0 else { return }
            _ = flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    /// Pids of FLOCK entries in /proc/locks on this inode (0 when the holder is outside our pid namespace).
    static func flockHolders(inode: UInt64) -> [Int32] {
        guard let text = FileDescriptor.readText("/proc/locks") else { return [] }
        var out: [Int32] = []
        for line in text.split(separator: "\n") {
            // "1: FLOCK  ADVISORY  WRITE 13948 fe:00:16220411 0 EOF"; blocked waiters read "1: -> FLOCK ..." and are skipped.
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, f[1] == "FLOCK" else { continue }
            let dev = f[5].split(separator: ":")
            guard dev.count == 3, UInt64(dev[2]) == inode, let pid = Int32(f[4]) else { continue }
            out.append(max(pid, 0))
        }
        return out
    }
}
