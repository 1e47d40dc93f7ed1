import Testing
import Glibc
@testable import SageSystem

/// One netlink message: header (host order) and payload, padded to 4 bytes.
private func message(type: UInt16, sequence: UInt32, _ payload: [UInt8]) -> [UInt8] {
    var b: [UInt8] = []
    withUnsafeBytes(of: UInt32(16 + payload.count)) { b += $0 }
    withUnsafeBytes(of: type) { b += $0 }
    withUnsafeBytes(of: UInt16(2)) { b += $0 }  // NLM_F_MULTI
    withUnsafeBytes(of: sequence) { b += $0 }
    withUnsafeBytes(of: UInt32(0)) { b += $0 }
    b += payload
    while b.count % 4 != 0 { b.append(0) }
    return b
}

/// An inet_diag_msg for a listening socket: family, state, port (network order), address, inode (host order).
private func diagMessage(family: Int32, port: UInt16, address: [UInt8], inode: UInt32, state: UInt8 = 10) -> [UInt8] {
    var b: [UInt8] = [UInt8(family), state, 0, 0]
    b += [UInt8(port >> 8), UInt8(port & 0xff), 0, 0]           // sport, dport
    b += address + [UInt8](repeating: 0, count: 16 - address.count)  // src
    b += [UInt8](repeating: 0, count: 16)                         // dst
    b += [UInt8](repeating: 0, count: 12)                         // if, cookie
    b += [UInt8](repeating: 0, count: 16)                         // expires, rqueue, wqueue, uid
    withUnsafeBytes(of: inode) { b += $0 }
    return b
}

@Suite struct SocketDiagTests {
    @Test func theRequestAsksForTCPListenersOfOneFamily() {
        let r = SocketDiag.request(family: UInt8(AF_INET6), sequence: 7)
        #expect(r.count == 72)
        #expect(r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self) } == 72)
        #expect(r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self) } == 20)      // SOCK_DIAG_BY_FAMILY
        #expect(r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 6, as: UInt16.self) } == 0x301)   // REQUEST | DUMP
        #expect(r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) } == 7)
        #expect(Array(r[16..<20]) == [UInt8(AF_INET6), UInt8(IPPROTO_TCP), 0, 0])
        #expect(r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 20, as: UInt32.self) } == 1 << 10)  // TCPF_LISTEN
    }

    @Test func aReplyListsItsSocketsAndItsEnd() throws {
        let d = message(type: 20, sequence: 9, diagMessage(family: AF_INET, port: 5432, address: [127, 0, 0, 1], inode: 4242))
            + message(type: 20, sequence: 9, diagMessage(family: AF_INET6, port: 3000, address: [UInt8](repeating: 0, count: 15) + [1], inode: 77))
            + message(type: 3, sequence: 9, [0, 0, 0, 0])
        let r = try SocketDiag.parse(d, sequence: 9)
        #expect(r.done)
        #expect(r.sockets == [ProcFS.ListeningSocket(localAddress: "127.0.0.1", port: 5432, inode: 4242),
                              ProcFS.ListeningSocket(localAddress: "::1", port: 3000, inode: 77)])
    }

    @Test func aDatagramWithoutTheEndAsksForMore() throws {
        let d = message(type: 20, sequence: 1, diagMessage(family: AF_INET, port: 80, address: [0, 0, 0, 0], inode: 1))
        let r = try SocketDiag.parse(d, sequence: 1)
        #expect(!r.done)
        #expect(r.sockets.map(\.localAddress) == ["0.0.0.0"])
    }

    @Test func messagesOfAnotherRequestAndOtherStatesAreSkipped() throws {
        let d = message(type: 20, sequence: 2, diagMessage(family: AF_INET, port: 80, address: [127, 0, 0, 1], inode: 1))
            + message(type: 20, sequence: 1, diagMessage(family: AF_INET, port: 81, address: [127, 0, 0, 1], inode: 2, state: 1))
            + message(type: 20, sequence: 1, diagMessage(family: AF_INET, port: 82, address: [127, 0, 0, 1], inode: 3))
        #expect(try SocketDiag.parse(d, sequence: 1).sockets.map(\.port) == [82])
    }

    @Test func anErrorReplyThrowsWithItsErrno() {
        var payload: [UInt8] = []
        withUnsafeBytes(of: Int32(-EINVAL)) { payload += $0 }
        payload += [UInt8](repeating: 0, count: 16)  // the request's header, echoed
        #expect(throws: SystemError.self) { try SocketDiag.parse(message(type: 2, sequence: 5, payload), sequence: 5) }
        do { _ = try SocketDiag.parse(message(type: 2, sequence: 5, payload), sequence: 5) } catch let e as SystemError {
            #expect(e.errno == EINVAL)
        } catch {}
    }

    @Test func aMessageLongerThanItsDatagramThrows() {
        var d = message(type: 20, sequence: 1, diagMessage(family: AF_INET, port: 80, address: [127, 0, 0, 1], inode: 1))
        d.removeLast(10)
        #expect(throws: SystemError.self) { try SocketDiag.parse(d, sequence: 1) }
    }

    @Test func garbageNeverCrashesTheParser() {
        var rng = SystemRandomNumberGenerator()
        let valid = message(type: 20, sequence: 1, diagMessage(family: AF_INET, port: 80, address: [127, 0, 0, 1], inode: 1))
            + message(type: 3, sequence: 1, [0, 0, 0, 0])
        for _ in 0..<20_000 {
            var d = valid
            for _ in 0..<Int.random(in: 1...8, using: &rng) { d[Int.random(in: 0..<d.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng) { d = Array(d.prefix(Int.random(in: 0...d.count, using: &rng))) }
            _ = try? SocketDiag.parse(d, sequence: 1)
        }
        for n in 0...valid.count { _ = try? SocketDiag.parse(Array(valid.prefix(n)), sequence: 1) }
    }

    /// The real kernel: a socket this test listens on is listed, with the inode /proc/net/tcp gives it, and is gone
    /// once closed.
    @Test func theKernelListsAListenerAsProcNetTCPDoes() throws {
        let listener = try Listener.tcp(host: "127.0.0.1", port: 0)
        let port = listener.port
        let fromDiag = try #require(SocketDiag.listeningTCP()).filter { $0.port == port }
        let fromProc = ProcFS.parseListeningSockets(FileDescriptor.readText("/proc/net/tcp") ?? "").filter { $0.port == port }
        #expect(fromDiag.count == 1)
        #expect(fromDiag == fromProc)
        #expect(fromDiag.first?.localAddress == "127.0.0.1")
        listener.close()
        #expect(try #require(SocketDiag.listeningTCP()).allSatisfy { $0.port != port })
    }

    @Test func theKernelListsAnIPv6Listener() throws {
        let listener = try Listener.tcp(host: "::1", port: 0)
        defer { listener.close() }
        let fromDiag = try #require(SocketDiag.listeningTCP()).filter { $0.port == listener.port }
        let fromProc = ProcFS.parseListeningSockets(FileDescriptor.readText("/proc/net/tcp6") ?? "").filter { $0.port == listener.port }
        #expect(fromDiag.map(\.localAddress) == ["::1"])
        #expect(fromDiag == fromProc)
    }
}
