import Glibc
import CSageSystem

/// A TCP port that cannot be used, with whoever holds it when /proc shows it.
public struct PortConflict: Sendable, Equatable, CustomStringConvertible {
    public var port: Int
    public var host: String
    public var owners: [ProcFS.PortOwner]

    public init(port: Int, host: String, owners: [ProcFS.PortOwner]) {
        self.port = port; self.host = host; self.owners = owners
    }

    /// "port 5432 on 127.0.0.1 is in use by postgres (pid 812)".
    public var description: String {
        var seen = Set<Int32>()
        let named = owners.compactMap { o -> String? in
            guard let pid = o.pid, seen.insert(pid).inserted else { return nil }
            return "\(o.command ?? "process") (pid \(pid))"
        }
        let who = named.isEmpty
            ? "another process (pid unknown: run as root or check with ss -ltnp)"
            : named.joined(separator: ", ")
        return "port \(port) on \(host) is in use by \(who)"
    }
}

/// Checks, without side effects beyond an instant bind and close, whether a TCP port is free.
public enum PortCheck {
    /// nil when host:port can be listened on. A conflict when binding fails with EADDRINUSE, or when a
    /// LISTEN socket on that port sits on an overlapping address (0.0.0.0 and :: overlap every address).
    /// Other bind failures (an address that is not local, a privileged port) are not conflicts.
    ///
    /// On loopback both families count: a server on [::1]:5173 catches a browser's "localhost:5173" as surely as
    /// one on 127.0.0.1 would, so checking 127.0.0.1 also checks ::1, and the other way round.
    public static func check(host: String, port: Int) -> PortConflict? {
        let address = normalise(host)
        if let twin = loopbackTwin(address) {
            return checkOne(host: host, address: address, port: port) ?? checkOne(host: twin, address: twin, port: port)
        }
        return checkOne(host: host, address: address, port: port)
    }

    /// The other family's loopback address (nil for any other address).
    static func loopbackTwin(_ address: String) -> String? {
        switch address {
        case "127.0.0.1": return "::1"
        case "::1": return "127.0.0.1"
        default: return nil
        }
    }

    static func checkOne(host: String, address: String, port: Int) -> PortConflict? {
        // For a specific address the bind is the authority, so the free case (the default 127.0.0.1) is one syscall
        // pair and /proc is read only to name a holder. A wildcard also counts listeners on other addresses of the
        // same port (e.g. [::1]), which the bind would allow but which would catch clients of "localhost".
        let inUse = bindFails(address: address, port: port)
        if !inUse && !isWildcard(address) { return nil }
        let all = ProcFS.listeners(port: port)
        let overlapping = all.filter { overlaps($0.localAddress, address) }
        if overlapping.isEmpty && !inUse { return nil }
        return PortConflict(port: port, host: host, owners: overlapping.isEmpty ? all : overlapping)
    }

    /// The first conflict among several host:port pairs, in order.
    public static func firstConflict(_ endpoints: [(host: String, port: Int)]) -> PortConflict? {
        for e in endpoints { if let c = check(host: e.host, port: e.port) { return c } }
        return nil
    }

    /// Whether two listening addresses collide: equal, or either is a wildcard (v4-mapped IPv6 compared as IPv4).
    public static func overlaps(_ a: String, _ b: String) -> Bool {
        let x = unmapped(normalise(a)), y = unmapped(normalise(b))
        if isWildcard(x) || isWildcard(y) { return true }
        return x == y
    }

    static func isWildcard(_ a: String) -> Bool { a == "0.0.0.0" || a == "::" }

    static func normalise(_ host: String) -> String {
        var h = host
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        switch h.lowercased() {
        case "", "*": return "0.0.0.0"
        case "localhost": return "127.0.0.1"
        default: break
        }
        // Canonical text for IPv6 so "0:0::1" and "::1" compare equal.
        if h.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, h, &a) == 1 else { return h }
            var buf = [CChar](repeating: 0, count: 64)
            guard inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil else { return h }
            return ProcFS.text(ofCString: buf)
        }
        return h
    }

    static func unmapped(_ a: String) -> String {
        a.lowercased().hasPrefix("::ffff:") && a.contains(".") ? String(a.dropFirst(7)) : a
    }

    /// Binds (SO_REUSEADDR, so TIME_WAIT leftovers do not count) and closes at once; true on EADDRINUSE.
    static func bindFails(address: String, port: Int) -> Bool {
        let isV6 = address.contains(":")
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc: Int32
        if isV6 {
            var a = sockaddr_in6(); a.sin6_family = sa_family_t(AF_INET6); a.sin6_port = UInt16(truncatingIfNeeded: port).bigEndian
            guard inet_pton(AF_INET6, address, &a.sin6_addr) == 1 else { return false }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in(); a.sin_family = sa_family_t(AF_INET); a.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
            guard inet_pton(AF_INET, address, &a.sin_addr) == 1 else { return false }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        return rc != 0 && csage_errno() == EADDRINUSE
    }
}
