import Glibc
import CSageSystem

/// Read-only views of Linux /proc: process identity (start times, so a reused pid is never mistaken for the
/// process that once had it), groups, resource use, and which process listens on a TCP port.
/// Every function returns nil or an empty list when the information is gone or unreadable; none throws.
public enum ProcFS {
    /// The fields of /proc/<pid>/stat that sagedev uses (numbers are the field positions in proc(5)).
    public struct Stat: Sendable, Equatable {
        public var pid: Int32
        public var comm: String            // 2, without the parentheses
        public var state: Character        // 3
        public var parentPid: Int32        // 4
        public var processGroup: Int32     // 5
        public var sessionID: Int32        // 6
        public var userTicks: UInt64       // 14
        public var systemTicks: UInt64     // 15
        public var startTime: UInt64       // 22, clock ticks since boot
    }

    /// Parses the text of /proc/<pid>/stat. The command name may hold spaces and parentheses, so the fields
    /// after it are taken from after the LAST ')'.
    public static func parseStat(_ text: String) -> Stat? {
        let bytes = Array(text.utf8)
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")), open < close else { return nil }
        guard let pid = Int32(trimmed(String(decoding: bytes[..<open], as: UTF8.self))) else { return nil }
        let comm = String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
        let rest = bytes[(close + 1)...].split(whereSeparator: { $0 == 0x20 || $0 == 0x0A })
            .map { String(decoding: $0, as: UTF8.self) }
        // rest[0] is field 3 (state); field n is rest[n - 3].
        guard rest.count >= 20, rest[0].count == 1, let state = rest[0].first,
              let ppid = Int32(rest[1]), let pgrp = Int32(rest[2]), let sid = Int32(rest[3]),
              let utime = UInt64(rest[11]), let stime = UInt64(rest[12]), let start = UInt64(rest[19])
        else { return nil }
        return Stat(pid: pid, comm: comm, state: state, parentPid: ppid, processGroup: pgrp, sessionID: sid,
                    userTicks: utime, systemTicks: stime, startTime: start)
    }

    public static func stat(pid: Int32) -> Stat? {
        guard pid > 0, let text = FileDescriptor.readText("/proc/\(pid)/stat") else { return nil }
        return parseStat(text)
    }

    /// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot.
    public static func startTime(pid: Int32) -> UInt64? { stat(pid: pid)?.startTime }
    /// Field 3: R, S, D, Z, T, t, X, I...
    public static func state(pid: Int32) -> Character? { stat(pid: pid)?.state }
    public static func parentPid(pid: Int32) -> Int32? { stat(pid: pid)?.parentPid }
    public static func processGroup(pid: Int32) -> Int32? { stat(pid: pid)?.processGroup }
    public static func sessionID(pid: Int32) -> Int32? { stat(pid: pid)?.sessionID }
    public static func cpuTicks(pid: Int32) -> (user: UInt64, system: UInt64)? {
        stat(pid: pid).map { ($0.userTicks, $0.systemTicks) }
    }

    /// The kernel's short command name (at most 15 bytes).
    public static func comm(pid: Int32) -> String? {
        guard pid > 0, let text = FileDescriptor.readText("/proc/\(pid)/comm") else { return nil }
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    /// argv as the process sees it now (empty for kernel threads and zombies, and for a moment while a
    /// freshly spawned child is still inside exec).
    public static func commandLine(pid: Int32) -> [String]? {
        guard pid > 0, let bytes = FileDescriptor.readFile("/proc/\(pid)/cmdline", limit: 1 << 20) else { return nil }
        var parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    /// The environment a process started with (/proc/<pid>/environ); nil when it is gone or belongs to another user.
    public static func environment(pid: Int32) -> [String: String]? {
        guard pid > 0, let bytes = FileDescriptor.readFile("/proc/\(pid)/environ", limit: 1 << 20) else { return nil }
        var env: [String: String] = [:]
        for entry in bytes.split(separator: 0) {
            let s = String(decoding: entry, as: UTF8.self)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        }
        return env
    }

    /// The real uid of a process (the first field of Uid: in /proc/<pid>/status).
    public static func uid(pid: Int32) -> UInt32? {
        guard pid > 0, let text = FileDescriptor.readText("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Uid:") {
            return line.dropFirst(4).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { UInt32($0) }
        }
        return nil
    }

    /// A readable command name: the comm, completed from argv[0] when the kernel truncated it.
    public static func commandName(pid: Int32) -> String? {
        let c = comm(pid: pid)
        if let c, c.utf8.count < 15 { return c }
        if let argv0 = commandLine(pid: pid)?.first, !argv0.isEmpty {
            let base = argv0.split(separator: "/").last.map(String.init) ?? argv0
            let name = base.split(separator: " ").first.map(String.init) ?? base
            if c == nil || name.hasPrefix(c!) { return name }
        }
        return c
    }

    /// Every pid in /proc, ascending.
    public static func allPids() -> [Int32] {
        numericEntries(of: "/proc").sorted()
    }

    /// The live (non-zombie) members of a process group.
    public static func processes(inGroup pgid: Int32) -> [Int32] {
        guard pgid > 0 else { return [] }
        return allPids().filter { pid in
            guard let s = stat(pid: pid) else { return false }
            return s.processGroup == pgid && s.state != "Z" && s.state != "X"
        }
    }

    /// Members of a process group that may still hold resources (ports, files): live ones, and zombies whose other
    /// threads are still exiting (a killed multi-threaded process shows "Z" for its main thread while its other
    /// threads, and its sockets, linger for a few milliseconds).
    public static func processesHoldingResources(inGroup pgid: Int32) -> [Int32] {
        guard pgid > 0 else { return [] }
        return allPids().filter { pid in
            guard let s = stat(pid: pid), s.processGroup == pgid, s.state != "X" else { return false }
            return s.state != "Z" || threadCount(pid: pid) > 1
        }
    }

    /// Waits, in short timed waits, until no member of the group holds resources (its ports and files are then
    /// free) or the deadline passes; true when the group is gone.
    @discardableResult
    public static func waitForGroupToEnd(_ pgid: Int32, deadline: Deadline) -> Bool {
        waitUntil(deadline: deadline) { processesHoldingResources(inGroup: pgid).isEmpty }
    }

    /// Polls `condition` (every 2 ms unless told) until it holds (true) or the deadline passes (false).
    @discardableResult
    public static func waitUntil(deadline: Deadline, everyMilliseconds interval: Int32 = 2, _ condition: () -> Bool) -> Bool {
        while !condition() {
            if deadline.hasPassed { return false }
            var p = pollfd(fd: -1, events: 0, revents: 0)
            _ = poll(&p, 0, interval)
        }
        return true
    }

    /// Live processes whose working directory is `directory`. A postgres cluster's children run in its data
    /// directory, each in a session of its own (`setsid` in every child), so no process group finds them.
    public static func processes(workingIn directory: String) -> [Int32] {
        allPids().filter { pid in
            guard let s = stat(pid: pid), s.state != "Z", s.state != "X" else { return false }
            return readLink("/proc/\(pid)/cwd") == directory
        }
    }

    /// Entries in /proc/<pid>/task (0 when the process is gone).
    public static func threadCount(pid: Int32) -> Int {
        guard let d = opendir("/proc/\(pid)/task") else { return 0 }
        defer { closedir(d) }
        var n = 0
        while let e = readdir(d) {
            if e.pointee.d_name.0 != UInt8(ascii: ".") { n += 1 }
        }
        return n
    }

    /// The live (non-zombie) members of a session.
    public static func processes(inSession sid: Int32) -> [Int32] {
        guard sid > 0 else { return [] }
        return allPids().filter { pid in
            guard let s = stat(pid: pid) else { return false }
            return s.sessionID == sid && s.state != "Z" && s.state != "X"
        }
    }

    /// True when the pid exists, is not a zombie and, if `startTime` is given, started at exactly that tick,
    /// so a pid reused by an unrelated process is never taken for the one recorded.
    public static func isAlive(pid: Int32, startTime: UInt64?) -> Bool {
        guard let s = stat(pid: pid), s.state != "Z", s.state != "X" else { return false }
        if let startTime { return s.startTime == startTime }
        return true
    }

    /// VmRSS from /proc/<pid>/status, in bytes.
    public static func residentSetBytes(pid: Int32) -> Int? {
        guard pid > 0, let text = FileDescriptor.readText("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let parts = line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let n = parts.first.flatMap({ Int($0) }) else { return nil }
            let unit = parts.count > 1 ? parts[1].lowercased() : "kb"
            switch unit {
            case "kb": return n * 1024
            case "mb": return n * 1024 * 1024
            default: return n
            }
        }
        return nil
    }

    public static var clockTicksPerSecond: Int {
        let t = sysconf(Int32(_SC_CLK_TCK))
        return t > 0 ? t : 100
    }

    // MARK: TCP listeners

    /// A socket listening on a port, and who holds it when that can be seen.
    public struct PortOwner: Sendable, Equatable {
        public var pid: Int32?
        public var command: String?
        public var localAddress: String
        public var port: Int
        public init(pid: Int32?, command: String?, localAddress: String, port: Int) {
            self.pid = pid; self.command = command; self.localAddress = localAddress; self.port = port
        }
    }

    /// A LISTEN entry of /proc/net/tcp or tcp6.
    public struct ListeningSocket: Sendable, Equatable {
        public var localAddress: String
        public var port: Int
        public var inode: UInt64
    }

    /// Every TCP socket in LISTEN state (IPv4 and IPv6) in this network namespace: from sock_diag, or from
    /// /proc/net/tcp and tcp6 where the kernel has no sock_diag (see `SocketDiag`).
    public static func listeningSockets() -> [ListeningSocket] {
        if let sockets = SocketDiag.listeningTCP() { return sockets }
        var out: [ListeningSocket] = []
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            if let text = FileDescriptor.readText(file) { out += parseListeningSockets(text) }
        }
        return out
    }

    /// Parses /proc/net/tcp or /proc/net/tcp6 text, keeping the sockets in state 0A (LISTEN).
    public static func parseListeningSockets(_ text: String) -> [ListeningSocket] {
        var out: [ListeningSocket] = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 10, f[3] == "0A" else { continue }
            let local = f[1].split(separator: ":")
            guard local.count == 2, let port = Int(local[1], radix: 16),
                  let address = decodeAddress(String(local[0])), let inode = UInt64(f[9]) else { continue }
            out.append(ListeningSocket(localAddress: address, port: port, inode: inode))
        }
        return out
    }

    /// Decodes the kernel's hex address (32-bit words in host byte order, little-endian here) into text:
    /// 8 digits for IPv4 ("0100007F" → "127.0.0.1"), 32 for IPv6 ("…01000000" → "::1").
    public static func decodeAddress(_ hex: String) -> String? {
        let digits = Array(hex.utf8)
        guard digits.count == 8 || digits.count == 32 else { return nil }
        var bytes: [UInt8] = []
        for w in 0..<(digits.count / 8) {
            guard let word = UInt32(String(decoding: digits[(w * 8)..<(w * 8 + 8)], as: UTF8.self), radix: 16) else { return nil }
            // The kernel printed the word in host order; its bytes in host order are the address bytes.
            withUnsafeBytes(of: word) { bytes += $0 }
        }
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        var buf = [CChar](repeating: 0, count: 64)
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress!, &buf, socklen_t(buf.count)) } != nil
        return ok ? text(ofCString: buf) : nil
    }

    /// Who listens on a TCP port (IPv4 and IPv6). The pid is found by matching the socket inode against
    /// /proc/*/fd links; processes whose fds cannot be read (another user, without root) leave it nil.
    public static func listeners(port: Int) -> [PortOwner] {
        let sockets = listeningSockets().filter { $0.port == port }
        guard !sockets.isEmpty else { return [] }
        let holders = socketHolders(inodes: Set(sockets.map(\.inode).filter { $0 != 0 }))
        var out: [PortOwner] = []
        for s in sockets {
            let pids = (holders[s.inode] ?? []).sorted()
            if pids.isEmpty {
                out.append(PortOwner(pid: nil, command: nil, localAddress: s.localAddress, port: s.port))
            }
            for pid in pids {
                out.append(PortOwner(pid: pid, command: commandName(pid: pid), localAddress: s.localAddress, port: s.port))
            }
        }
        return out
    }

    /// The TCP sockets in LISTEN state that the members of a process group hold: each member's socket inodes
    /// (its /proc/<pid>/fd links) matched against /proc/<pid>/net/tcp and tcp6, which show the sockets of that
    /// member's own network namespace. Sorted by port, then address; each address and port once.
    public static func listeningSockets(ofGroup pgid: Int32) -> [ListeningSocket] {
        listeningSockets(ofProcesses: processes(inGroup: pgid))
    }

    /// The TCP sockets in LISTEN state held by these processes (see `listeningSockets(ofGroup:)`).
    public static func listeningSockets(ofProcesses pids: [Int32]) -> [ListeningSocket] {
        var found: [ListeningSocket] = []
        var tables: [String: [ListeningSocket]] = [:]  // by network namespace
        for pid in pids {
            let inodes = socketInodes(pid: pid)
            guard !inodes.isEmpty else { continue }
            let namespace = readLink("/proc/\(pid)/ns/net") ?? "pid \(pid)"
            if tables[namespace] == nil {
                var sockets: [ListeningSocket] = []
                for file in ["tcp", "tcp6"] {
                    if let text = FileDescriptor.readText("/proc/\(pid)/net/\(file)") { sockets += parseListeningSockets(text) }
                }
                tables[namespace] = sockets
            }
            for s in tables[namespace]! where inodes.contains(s.inode) && !found.contains(where: { $0.port == s.port && $0.localAddress == s.localAddress }) {
                found.append(s)
            }
        }
        return found.sorted { ($0.port, $0.localAddress) < ($1.port, $1.localAddress) }
    }

    /// The inodes of the sockets a process holds open (its /proc/<pid>/fd links to socket:[N]).
    public static func socketInodes(pid: Int32) -> Set<UInt64> {
        var out = Set<UInt64>()
        for fd in numericEntries(of: "/proc/\(pid)/fd") {
            guard let target = readLink("/proc/\(pid)/fd/\(fd)"), target.hasPrefix("socket:["), target.hasSuffix("]"),
                  let inode = UInt64(target.dropFirst(8).dropLast()) else { continue }
            out.insert(inode)
        }
        return out
    }

    /// Maps socket inodes to the pids holding an fd on them, scanning /proc/*/fd (unreadable ones skipped).
    public static func socketHolders(inodes: Set<UInt64>) -> [UInt64: Set<Int32>] {
        var result: [UInt64: Set<Int32>] = [:]
        guard !inodes.isEmpty else { return result }
        // Our own process first: cheap, and the common case in tests and for the daemon checking itself.
        let me = getpid()
        for pid in [me] + allPids().filter({ $0 != me }) {
            for fd in numericEntries(of: "/proc/\(pid)/fd") {
                guard let target = readLink("/proc/\(pid)/fd/\(fd)"), target.hasPrefix("socket:["), target.hasSuffix("]"),
                      let inode = UInt64(target.dropFirst(8).dropLast()), inodes.contains(inode) else { continue }
                result[inode, default: []].insert(pid)
            }
        }
        return result
    }

    // MARK: helpers

    static func text(ofCString buf: [CChar]) -> String {
        String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names of a directory's entries that are decimal numbers (pids in /proc, fds in /proc/<pid>/fd).
    static func numericEntries(of directory: String) -> [Int32] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        while let entry = readdir(dir) {
            let name: String = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) { String(cString: $0) }
            }
            if let first = name.utf8.first, first >= 0x30, first <= 0x39, let n = Int32(name) { out.append(n) }
        }
        return out
    }
}

private func trimmed(_ text: String) -> String {
    var s = Substring(text)
    while s.first == " " || s.first == "\n" { s = s.dropFirst() }
    while s.last == " " || s.last == "\n" { s = s.dropLast() }
    return String(s)
}
