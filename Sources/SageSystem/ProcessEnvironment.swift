import Glibc

public enum ProcessEnvironment {
    /// This process's environment as a dictionary.
    public static func current() -> [String: String] {
        var env: [String: String] = [:]
        var p = Glibc.environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }

    /// The absolute path of the running executable (/proc/self/exe).
    public static func executablePath() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Searches PATH for an executable.
    public static func which(_ name: String, path: String? = nil) -> String? {
        if name.contains("/") { return FileDescriptor.isExecutable(name) ? name : nil }
        for dir in (path ?? current()["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileDescriptor.isExecutable(candidate) { return candidate }
        }
        return nil
    }
}

/// Who and where this process is.
public enum ProcessIdentity {
    public static var pid: Int32 { getpid() }
    public static var userID: UInt32 { getuid() }
    public static var effectiveUserID: UInt32 { geteuid() }
    public static var groupID: UInt32 { getgid() }

    /// The working directory; nil when it cannot be read (deleted, or a path over 4 KiB).
    public static func workingDirectory() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether the fd (0, 1, 2…) is a terminal.
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Ends the process with `code`, flushing stdio.
    public static func exit(_ code: Int32) -> Never { Glibc.exit(code) }
}
