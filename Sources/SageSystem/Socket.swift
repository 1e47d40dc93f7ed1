import Glibc
import CSageSystem

/// A connected stream socket (TCP or Unix) whose every operation has a deadline.
/// Not shared between threads: one owner reads and writes it, then closes it.
public final class Socket: @unchecked Sendable {
    public private(set) var fd: Int32
    /// What this socket is connected to, for messages ("127.0.0.1:5432", "/path/sock").
    public let peer: String

    public init(adopting fd: Int32, peer: String) {
        self.fd = fd; self.peer = peer
    }
    deinit { close() }

    public func close() {
        if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
    }

    // MARK: connecting

    /// Connects over TCP, trying each resolved address until one answers or the deadline passes.
    public static func connect(host: String, port: Int, deadline: Deadline) throws -> Socket {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SystemError(.invalidAddress, "cannot resolve host \"\(host)\": \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        var lastError = SystemError(.connectionRefused, "connect \(host):\(port): no address")
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let ai = node {
            node = ai.pointee.ai_next
            do {
                return try connect(family: ai.pointee.ai_family, address: ai.pointee.ai_addr,
                                   length: ai.pointee.ai_addrlen, label: "\(host):\(port)", deadline: deadline)
            } catch let e as SystemError {
                lastError = e
                if e.code == .timedOut { throw e }
            }
        }
        throw lastError
    }

    /// Connects to a Unix-domain stream socket.
    public static func connect(unixPath path: String, deadline: Deadline) throws -> Socket {
        var addr = try UnixAddress(path)
        return try addr.withSockaddr { sa, len in
            try connect(family: AF_UNIX, address: sa, length: len, label: path, deadline: deadline)
        }
    }

    private static func connect(family: Int32, address: UnsafePointer<sockaddr>, length: socklen_t,
                                label: String, deadline: Deadline) throws -> Socket {
        let fd = Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError.fromErrno("socket for", label) }
        let socket = Socket(adopting: fd, peer: label)
        if family != AF_UNIX {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if Glibc.connect(fd, address, length) != 0 {
            let e = csage_errno()
            guard e == EINPROGRESS || e == EAGAIN else { throw SystemError.fromErrno("connect", label, errno: e) }
            try socket.waitFor(Int16(POLLOUT), deadline: deadline, doing: "connect")
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError != 0 { throw SystemError.fromErrno("connect", label, errno: soError) }
        }
        return socket
    }

    // MARK: I/O

    /// Waits until the socket is readable/writable or the deadline passes. Never spins: sleeps in poll.
    public func waitFor(_ events: Int16, deadline: Deadline, doing what: String) throws {
        var p = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let ms = deadline.remainingMilliseconds
            if ms == 0 { throw SystemError(.timedOut, "\(what) \(peer): no answer before the deadline", errno: ETIMEDOUT) }
            let n = poll(&p, 1, ms)
            if n > 0 { return }
            if n < 0 && csage_errno() != EINTR { throw SystemError.fromErrno("poll", peer) }
        }
    }

    /// True while nothing is waiting to be read and the peer has not hung up or failed: poll(2) with no wait
    /// reports no event. An idle connection kept for later is checked this way before it is used again (a server
    /// that restarted, or ended the session, has left an error message or an end of stream behind).
    public var isQuiet: Bool {
        guard fd >= 0 else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let n = poll(&p, 1, 0)
            if n >= 0 { return n == 0 }
            if csage_errno() != EINTR { return false }
        }
    }

    /// Writes all bytes or throws.
    public func write(_ bytes: [UInt8], deadline: Deadline) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { offset += n; continue }
            let e = csage_errno()
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                try waitFor(Int16(POLLOUT), deadline: deadline, doing: "write to"); continue
            }
            if n < 0 && e == EINTR { continue }
            throw SystemError.fromErrno("write to", peer, errno: e)
        }
    }

    /// Reads up to `maximum` bytes. Returns an empty array at end of stream.
    public func read(maximum: Int = 65536, deadline: Deadline) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maximum)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress!, maximum, 0) }
            if n >= 0 { buffer.removeSubrange(n...); return buffer }
            let e = csage_errno()
            if e == EAGAIN || e == EWOULDBLOCK { try waitFor(Int16(POLLIN), deadline: deadline, doing: "read from"); continue }
            if e == EINTR { continue }
            throw SystemError.fromErrno("read from", peer, errno: e)
        }
    }

    /// Reads what is available right now without waiting; nil when nothing is, empty at end of stream.
    public func readAvailable(maximum: Int = 65536) throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: maximum)
        let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress!, maximum, 0) }
        if n >= 0 { buffer.removeSubrange(n...); return buffer }
        let e = csage_errno()
        if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return nil }
        throw SystemError.fromErrno("read from", peer, errno: e)
    }

    /// Writes what the socket takes right now without waiting: the byte count, nil when it would block.
    /// Never raises SIGPIPE; a peer that has gone throws `.connectionReset`.
    public func writeAvailable(_ bytes: [UInt8]) throws -> Int? {
        while true {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n >= 0 { return n }
            let e = csage_errno()
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            if e == EINTR { continue }
            throw SystemError.fromErrno("write to", peer, errno: e)
        }
    }

    /// Ends both directions (the peer reads end of stream); the fd stays open until `close`.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// The connecting process's pid, uid and gid (Unix sockets only).
    public func peerCredentials() throws -> (pid: Int32, uid: UInt32, gid: UInt32) {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        guard csage_peer_cred(fd, &pid, &uid, &gid) == 0 else { throw SystemError.fromErrno("SO_PEERCRED on", peer) }
        return (pid, uid, gid)
    }
}

/// A sockaddr_un built from a path, with the 108-byte limit checked.
struct UnixAddress {
    var storage = sockaddr_un()
    init(_ path: String) throws {
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        guard bytes.count < capacity else {
            throw SystemError(.invalidAddress, "unix socket path is \(bytes.count) bytes, over the \(capacity - 1)-byte limit: \(path); use a shorter project path")
        }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
    }
    mutating func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        let len = socklen_t(MemoryLayout<sockaddr_un>.size)
        return try withUnsafePointer(to: &storage) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, len) }
        }
    }
}

/// A listening socket (TCP or Unix). Accepted connections are non-blocking Sockets.
public final class Listener: @unchecked Sendable {
    public private(set) var fd: Int32
    public let label: String
    public let port: Int

    private init(fd: Int32, label: String, port: Int) { self.fd = fd; self.label = label; self.port = port }
    deinit { close() }
    public func close() { if fd >= 0 { _ = Glibc.close(fd); fd = -1 } }

    /// Listens on host:port (port 0 picks a free one; see `port`).
    public static func tcp(host: String = "127.0.0.1", port: Int, backlog: Int32 = 128) throws -> Listener {
        let isV6 = host.contains(":")
        let fd = Glibc.socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError.fromErrno("socket for", "\(host):\(port)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var rc: Int32
        if isV6 {
            var a = sockaddr_in6(); a.sin6_family = sa_family_t(AF_INET6); a.sin6_port = UInt16(port).bigEndian
            inet_pton(AF_INET6, host, &a.sin6_addr)
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in(); a.sin_family = sa_family_t(AF_INET); a.sin_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else {
                Glibc.close(fd); throw SystemError(.invalidAddress, "\"\(host)\" is not an IPv4 address")
            }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if rc != 0 { let e = SystemError.fromErrno("bind", "\(host):\(port)"); Glibc.close(fd); throw e }
        guard listen(fd, backlog) == 0 else { let e = SystemError.fromErrno("listen on", "\(host):\(port)"); Glibc.close(fd); throw e }
        var bound = sockaddr_storage(); var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let actual: Int = withUnsafePointer(to: &bound) { p in
            isV6 ? Int(UInt16(bigEndian: p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }))
                 : Int(UInt16(bigEndian: p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }))
        }
        return Listener(fd: fd, label: "\(host):\(actual)", port: actual)
    }

    /// Listens on a Unix socket path with the given mode (the path is replaced if a stale socket is there).
    public static func unix(path: String, mode: mode_t = 0o600, backlog: Int32 = 64) throws -> Listener {
        var addr = try UnixAddress(path)
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError.fromErrno("socket for", path) }
        unlink(path)
        // umask makes the socket file born with the right mode: no window where others could connect.
        let old = umask(~mode & 0o777)
        let rc = addr.withSockaddr { bind(fd, $0, $1) }
        umask(old)
        if rc != 0 { let e = SystemError.fromErrno("bind", path); Glibc.close(fd); throw e }
        chmod(path, mode)
        guard listen(fd, backlog) == 0 else { let e = SystemError.fromErrno("listen on", path); Glibc.close(fd); throw e }
        return Listener(fd: fd, label: path, port: 0)
    }

    /// Accepts one pending connection, or returns nil when none is waiting.
    public func accept() throws -> Socket? {
        let c = csage_accept4(fd)
        if c >= 0 { return Socket(adopting: c, peer: label) }
        let e = csage_errno()
        if e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED { return nil }
        throw SystemError.fromErrno("accept on", label, errno: e)
    }

    /// Waits up to the deadline for a connection.
    public func accept(deadline: Deadline) throws -> Socket {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            if let s = try accept() { return s }
            let ms = deadline.remainingMilliseconds
            if ms == 0 { throw SystemError(.timedOut, "accept on \(label): nobody connected before the deadline") }
            _ = poll(&p, 1, ms)
        }
    }
}
