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
        guard rename(tmp, path) == 0 else { let e = SystemError.fromErrno("rename onto", path); unlink(tmp); throw e }
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
}
