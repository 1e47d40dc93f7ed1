import Glibc
import CSageSystem

/// Small helpers over raw file descriptors and files, all reporting errors as SystemError.
public enum FileDescriptor {
    /// Writes a whole string to an fd, retrying short writes and EINTR; errors are dropped (used for stdout/stderr).
    public static func writeAll(_ fd: Int32, _ s: String) {
        var bytes = Array(s.utf8)
        _ = writeAll(fd, &bytes)
    }
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: inout [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n > 0 { off += n } else if n < 0 && csage_errno() == EINTR { continue } else { return false }
        }
        return true
    }

    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// A pipe whose ends are close-on-exec (the spawn actions dup the child's end into place).
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard csage_pipe2_cloexec(&fds) == 0 else { throw SystemError.fromErrno("pipe", "") }
        return (fds[0], fds[1])
    }

    /// Reads a whole (small) file; nil when it does not exist or cannot be read.
    public static func readFile(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8](), chunk = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n > 0 { out += chunk[0..<n] } else if n < 0 && csage_errno() == EINTR { continue } else { break }
        }
        return out
    }
    public static func readText(_ path: String) -> String? {
        readFile(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Writes a file atomically (temp file + rename) with the given mode.
    public static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError.fromErrno("create", tmp) }
        var b = bytes
        let ok = writeAll(fd, &b)
        fchmod(fd, mode)
        close(fd)
        guard ok else { unlink(tmp); throw SystemError.fromErrno("write", tmp) }
        guard Glibc.rename(tmp, path) == 0 else { let e = SystemError.fromErrno("rename onto", path); unlink(tmp); throw e }
    }

    /// mkdir -p with a mode for the directories it creates (and the last one, which it also chmods).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && csage_errno() != EEXIST {
                throw SystemError.fromErrno("create directory", current)
            }
        }
        chmod(path, mode)
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
    public static func isExecutable(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Closes an fd this code owns.
    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// A second, close-on-exec fd for the same open file; -1 on failure.
    public static func duplicate(_ fd: Int32) -> Int32 { fcntl(fd, F_DUPFD_CLOEXEC, 0) }

    /// Reads what is available into `buffer`: the byte count, 0 at end of file, nil when it would block
    /// (or a signal interrupted it). Other errors throw.
    public static func readAvailable(_ fd: Int32, into buffer: inout [UInt8]) throws -> Int? {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
        if n >= 0 { return n }
        let e = csage_errno()
        if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return nil }
        throw SystemError.fromErrno("read fd", "\(fd)", errno: e)
    }

    /// Up to `maximum` bytes of a file from `offset`; nil when it cannot be opened or read.
    public static func readFile(_ path: String, offset: Int, maximum: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var chunk = [UInt8](repeating: 0, count: maximum)
        let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(offset)) }
        guard n >= 0 else { return nil }
        chunk.removeSubrange(n...)
        return chunk
    }

    /// Opens a file for appending (created with `mode`), close-on-exec; nil when it cannot be opened.
    public static func openForAppending(_ path: String, mode: mode_t = 0o644) -> Int32? {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode)
        return fd >= 0 ? fd : nil
    }

    /// Removes a file (not a directory); false when it was not there or could not be removed.
    @discardableResult
    public static func remove(_ path: String) -> Bool { unlink(path) == 0 }

    /// Renames within a file system, replacing `to`; false on failure (errno tells why).
    @discardableResult
    public static func rename(_ from: String, to: String) -> Bool { Glibc.rename(from, to) == 0 }

    /// rename(2) that throws, naming both paths.
    public static func move(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw SystemError.fromErrno("rename \(from) to", to) }
    }

    /// Cuts a file to `length` bytes.
    @discardableResult
    public static func truncate(_ path: String, to length: Int = 0) -> Bool { Glibc.truncate(path, off_t(length)) == 0 }

    /// chown(2); false on failure.
    @discardableResult
    public static func changeOwner(_ path: String, uid: UInt32, gid: UInt32) -> Bool { chown(path, uid, gid) == 0 }

    /// What stat(2) says about a path (following symbolic links), or about an open fd.
    public static func info(_ path: String) -> FileInfo? {
        var st = stat()
        return stat(path, &st) == 0 ? FileInfo(st) : nil
    }
    public static func info(fd: Int32) -> FileInfo? {
        var st = stat()
        return fstat(fd, &st) == 0 ? FileInfo(st) : nil
    }

    /// Bytes available to an unprivileged user on the file system holding `path`.
    public static func availableBytes(onFileSystemOf path: String) -> Double? {
        var vfs = statvfs()
        guard statvfs(path, &vfs) == 0 else { return nil }
        return Double(vfs.f_bavail) * Double(vfs.f_frsize)
    }

    /// Waits until the fd is readable or the deadline passes; true when readable. Never spins: sleeps in poll.
    public static func waitReadable(_ fd: Int32, deadline: Deadline) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, deadline.remainingMilliseconds) > 0
    }
}

/// The stat(2) fields sagedev reads.
public struct FileInfo: Sendable, Equatable {
    public var size: Int
    /// Permission bits (0o777 and the set-id bits).
    public var permissions: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var isDirectory: Bool
    /// Last modification, wall-clock seconds since the epoch.
    public var modified: Double

    init(_ st: stat) {
        size = Int(st.st_size)
        permissions = UInt32(st.st_mode) & 0o7777
        uid = st.st_uid; gid = st.st_gid
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        modified = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }
}
