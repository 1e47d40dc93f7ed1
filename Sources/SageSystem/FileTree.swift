import Glibc
import CSageSystem

/// Whole-file and directory operations for installers: listing, renaming into place, removing a tree.
public enum FileTree {
    /// Names in a directory (without "." and ".."), sorted; nil when it cannot be read.
    public static func list(_ path: String) -> [String]? {
        guard let d = opendir(path) else { return nil }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Every regular file under `path`, as paths relative to it, sorted.
    public static func files(under path: String) -> [String] {
        var out: [String] = []
        func walk(_ rel: String) {
            let full = rel.isEmpty ? path : path + "/" + rel
            for name in list(full) ?? [] {
                let r = rel.isEmpty ? name : rel + "/" + name
                var st = stat()
                guard lstat(path + "/" + r, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFDIR { walk(r) } else if (st.st_mode & S_IFMT) == S_IFREG { out.append(r) }
            }
        }
        walk("")
        return out.sorted()
    }

    /// rename(2): atomic within one filesystem.
    public static func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 { throw SystemError.fromErrno("rename \(from) to", to) }
    }

    /// rm -rf, without following symlinks. Missing is fine.
    public static func remove(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in list(path) ?? [] { try remove(path + "/" + name) }
            if rmdir(path) != 0 { throw SystemError.fromErrno("remove directory", path) }
        } else if unlink(path) != 0 {
            throw SystemError.fromErrno("remove", path)
        }
    }

    public static func symlink(_ target: String, at path: String) throws {
        unlink(path)
        if Glibc.symlink(target, path) != 0 { throw SystemError.fromErrno("create symlink", path) }
    }

    public static func chmod(_ path: String, _ mode: UInt32) { _ = Glibc.chmod(path, mode_t(mode)) }

    /// The permission bits of a path (nil when it does not exist).
    public static func mode(_ path: String) -> UInt32? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt32(st.st_mode & 0o7777) : nil
    }

    /// Calls `body` with successive chunks of a file (for hashing files too large to hold at once).
    public static func forEachChunk(_ path: String, size: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError.fromErrno("open", path) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: size)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, size) }
            if n < 0 { if csage_errno() == EINTR { continue }; throw SystemError.fromErrno("read", path) }
            if n == 0 { return }
            buf.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    /// The machine architecture (`uname -m`).
    public static var machine: String {
        var u = utsname()
        uname(&u)
        return withUnsafePointer(to: u.machine) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
    }
}
