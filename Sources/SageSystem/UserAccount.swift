import Glibc

/// An OS user account (from the passwd database).
public struct UserAccount: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var home: String

    /// The account this process runs as.
    public static func current() -> UserAccount? { named(uid: getuid()) }

    public static func named(_ name: String) -> UserAccount? {
        guard let pw = getpwnam(name) else { return nil }
        return UserAccount(pw.pointee)
    }

    public static func named(uid: UInt32) -> UserAccount? {
        guard let pw = getpwuid(uid) else { return nil }
        return UserAccount(pw.pointee)
    }

    init(_ pw: passwd) {
        name = String(cString: pw.pw_name); uid = pw.pw_uid; gid = pw.pw_gid; home = String(cString: pw.pw_dir)
    }

    public static var isRoot: Bool { getuid() == 0 }

    /// The first directory on the way to `path` that this account cannot enter (search permission), if any.
    public func firstUnreachableDirectory(on path: String) -> (path: String, mode: UInt32)? {
        var dir = ""
        for part in path.split(separator: "/") {
            dir += "/" + part
            var st = stat()
            guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { break }
            if uid == 0 { continue }
            let mode = st.st_mode
            let ok = st.st_uid == uid ? mode & 0o100 != 0 : (st.st_gid == gid ? mode & 0o010 != 0 : mode & 0o001 != 0)
            if !ok { return (dir, UInt32(mode & 0o777)) }
        }
        return nil
    }
}
