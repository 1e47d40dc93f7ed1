import Glibc
import CSageSystem

/// The TCP sockets in LISTEN state, from the kernel's sock_diag netlink interface (NETLINK_SOCK_DIAG,
/// SOCK_DIAG_BY_FAMILY with inet_diag_req_v2, as `ss -ltn` asks). Reading /proc/net/tcp instead walks the whole
/// established-connection hash table, whose size grows with the machine's memory: about 10 ms of kernel time per
/// read on a 24 GiB machine with 200 sockets, on the path of every `up`. Asked for listeners only, the kernel walks
/// only the listening hash: tens of microseconds.
public enum SocketDiag {
    // linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h, net/tcp_states.h
    static let netlinkSockDiag: Int32 = 4        // NETLINK_SOCK_DIAG
    static let sockDiagByFamily: UInt16 = 20     // SOCK_DIAG_BY_FAMILY
    static let requestFlags: UInt16 = 0x1 | 0x300  // NLM_F_REQUEST | NLM_F_DUMP
    static let done: UInt16 = 3                  // NLMSG_DONE
    static let error: UInt16 = 2                 // NLMSG_ERROR
    static let tcpListen: UInt8 = 10             // TCP_LISTEN
    static let headerSize = 16                   // struct nlmsghdr
    static let messageSize = 72                  // struct inet_diag_msg

    /// Every listening TCP socket (IPv4 and IPv6) in this process's network namespace, or nil when the kernel
    /// does not answer (no sock_diag: the caller reads /proc/net/tcp instead).
    public static func listeningTCP() -> [ProcFS.ListeningSocket]? {
        var out: [ProcFS.ListeningSocket] = []
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            guard let sockets = dump(family: family) else { return nil }
            out += sockets
        }
        return out
    }

    /// The request: a netlink header and an inet_diag_req_v2 for TCP sockets of `family` in LISTEN state.
    public static func request(family: UInt8, sequence: UInt32) -> [UInt8] {
        var b: [UInt8] = []
        let length = UInt32(headerSize + 56)
        appendHost(&b, length)
        appendHost(&b, sockDiagByFamily)
        appendHost(&b, requestFlags)
        appendHost(&b, sequence)
        appendHost(&b, UInt32(0))                  // port id: the kernel fills it in
        b += [family, UInt8(IPPROTO_TCP), 0, 0]  // family, protocol, extensions (none), pad
        appendHost(&b, UInt32(1) << UInt32(tcpListen))
        b += [UInt8](repeating: 0, count: 48)    // inet_diag_sockid: any
        return b
    }

    /// What one datagram of the reply holds: the sockets it lists, and whether it ends the dump. Throws on an
    /// NLMSG_ERROR or a message too short for its header.
    public static func parse(_ datagram: [UInt8], sequence: UInt32) throws -> (sockets: [ProcFS.ListeningSocket], done: Bool) {
        var sockets: [ProcFS.ListeningSocket] = []
        var at = 0
        while at + headerSize <= datagram.count {
            let length = Int(readHost32(datagram, at))
            let type = datagram.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 4, as: UInt16.self) }
            guard length >= headerSize, at + length <= datagram.count else {
                throw SystemError(.io, "sock_diag: a reply message of \(length) bytes at offset \(at) does not fit its \(datagram.count)-byte datagram")
            }
            let seq = readHost32(datagram, at + 8)
            if seq == sequence {
                switch type {
                case done:
                    return (sockets, true)
                case error:
                    let code = length >= headerSize + 4 ? Int32(bitPattern: readHost32(datagram, at + headerSize)) : 0
                    throw SystemError(.io, "sock_diag refused the request (errno \(-code))", errno: -code)
                default:
                    if length >= headerSize + messageSize, let s = socket(datagram, at + headerSize) { sockets.append(s) }
                }
            }
            at += (length + 3) & ~3  // NLMSG_ALIGN
        }
        return (sockets, false)
    }

    /// One inet_diag_msg: family, state, the local address and port (network order), the inode.
    static func socket(_ b: [UInt8], _ at: Int) -> ProcFS.ListeningSocket? {
        let family = Int32(b[at]), state = b[at + 1]
        guard state == tcpListen, family == AF_INET || family == AF_INET6 else { return nil }
        let port = Int(b[at + 4]) << 8 | Int(b[at + 5])
        let addressBytes = Array(b[(at + 8)..<(at + 8 + (family == AF_INET ? 4 : 16))])
        var text = [CChar](repeating: 0, count: 64)
        guard addressBytes.withUnsafeBytes({ inet_ntop(family, $0.baseAddress!, &text, socklen_t(text.count)) }) != nil else { return nil }
        let inode = UInt64(readHost32(b, at + 68))
        return ProcFS.ListeningSocket(localAddress: ProcFS.text(ofCString: text), port: port, inode: inode)
    }

    private static func dump(family: UInt8) -> [ProcFS.ListeningSocket]? {
        let fd = Glibc.socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkSockDiag)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // The kernel answers at once; the timeout only bounds a kernel that never does.
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let sequence = UInt32(truncatingIfNeeded: monotonicNanoseconds() & 0x7fff_ffff)
        let req = request(family: family, sequence: sequence)
        // Unconnected and unbound: a netlink datagram with no address goes to the kernel.
        guard req.withUnsafeBytes({ send(fd, $0.baseAddress!, $0.count, 0) }) == req.count else { return nil }
        var out: [ProcFS.ListeningSocket] = []
        var buffer = [UInt8](repeating: 0, count: 32768)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && csage_errno() == EINTR { continue }
            guard n > 0, let part = try? parse(Array(buffer[0..<n]), sequence: sequence) else { return nil }
            out += part.sockets
            if part.done { return out }
        }
    }

    // Netlink headers and the diag structures' plain integers are in host byte order; ports and addresses in
    // network order.
    private static func appendHost<T: FixedWidthInteger>(_ b: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v) { b += $0 }
    }

    private static func readHost32(_ b: [UInt8], _ at: Int) -> UInt32 {
        b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
    }
}
