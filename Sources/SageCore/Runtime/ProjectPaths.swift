import SageSystem

/// Every path sagedev uses inside a project, in one place.
public struct ProjectPaths: Sendable, Equatable {
    public let root: String
    public init(root: String) { self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root }

    public var state: String { root + "/.sagedev" }
    /// The control socket's directory: 0700, so only the owner can even reach the socket.
    public var run: String { state + "/run" }
    public var socket: String { run + "/sagedev.sock" }
    public var daemonLock: String { run + "/daemon.lock" }
    public var resetLock: String { run + "/reset.lock" }
    public var logs: String { state + "/logs" }
    public var daemonLog: String { logs + "/daemon.log" }
    public var data: String { state + "/data" }
    public var postgresData: String { data + "/postgres" }
    public var valkeyData: String { data + "/valkey" }
    public var compose: String { state + "/compose.yaml" }
    public var backups: String { state + "/backups" }
    public var envFile: String { root + "/.env" }
    public func pidFile(_ s: ServiceID) -> String { run + "/\(s.rawValue).pid" }
    public func log(_ s: String) -> String { logs + "/\(s).log" }

    /// Creates .sagedev (0755: the toolchain and data must be reachable by the postgres OS user), run (0700) and logs.
    public func ensure() throws {
        try FileDescriptor.makeDirectories(state, mode: 0o755)
        try FileDescriptor.makeDirectories(run, mode: 0o700)
        try FileDescriptor.makeDirectories(logs, mode: 0o755)
        try FileDescriptor.makeDirectories(data, mode: 0o755)
    }
}

/// A pid file holding "pid starttime", so that a reused pid is never mistaken for ours.
public struct PidRecord: Sendable, Equatable {
    public var pid: Int32
    public var startTime: UInt64
    public init(pid: Int32, startTime: UInt64) { self.pid = pid; self.startTime = startTime }

    public static func read(_ path: String) -> PidRecord? {
        guard let text = FileDescriptor.readText(path) else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 2, let pid = Int32(parts[0]), let st = UInt64(parts[1]) else { return nil }
        return PidRecord(pid: pid, startTime: st)
    }
    public func write(_ path: String) throws {
        try FileDescriptor.writeFileAtomically(path, Array("\(pid) \(startTime)\n".utf8), mode: 0o600)
    }
    /// Alive and the same process that wrote the record (start time matches).
    public var isAlive: Bool { ProcFS.isAlive(pid: pid, startTime: startTime) }
}
