import Testing
import Glibc
@testable import SageSystem

/// A connected, non-blocking Unix stream socket pair.
private func socketPair() throws -> (Socket, Socket) {
    var fds: [Int32] = [0, 0]
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    try #require(socketpair(AF_UNIX, type, 0, &fds) == 0)
    return (Socket(adopting: fds[0], peer: "pair-a"), Socket(adopting: fds[1], peer: "pair-b"))
}

@Suite struct SocketAvailableIOTests {
    @Test func writeAvailableSendsWhatReadAvailableReceives() throws {
        let (a, b) = try socketPair()
        #expect(try a.writeAvailable(Array("hello\n".utf8)) == 6)
        #expect(try b.readAvailable() == Array("hello\n".utf8))
    }

    @Test func readAvailableIsNilWhenNothingWaits() throws {
        let (a, b) = try socketPair()
        #expect(try b.readAvailable() == nil)
        withExtendedLifetime(a) {}
    }

    @Test func writeAvailableIsNilOnceThePeerStopsReading() throws {
        let (a, b) = try socketPair()
        defer { withExtendedLifetime(b) {} }
        let chunk = [UInt8](repeating: 0x61, count: 65536)
        var total = 0
        var wouldBlock = false
        // The kernel buffers a bounded amount (a few hundred KiB): the loop ends well before 64 MiB.
        while total < 64 << 20 {
            guard let n = try a.writeAvailable(chunk) else { wouldBlock = true; break }
            total += n
        }
        #expect(wouldBlock)
        #expect(total > 0)
    }

    @Test func readAvailableIsEmptyAtEndOfStream() throws {
        let (a, b) = try socketPair()
        a.close()
        #expect(try b.readAvailable() == [])
    }

    @Test func shutdownEndsThePeersStreamBeforeClose() throws {
        let (a, b) = try socketPair()
        a.shutdown()
        #expect(a.fd >= 0)
        #expect(try b.readAvailable() == [])
    }

    @Test func writingToAClosedPeerThrowsConnectionResetWithoutSIGPIPE() throws {
        let (a, b) = try socketPair()
        b.close()
        #expect { try a.writeAvailable(Array("x".utf8)) } throws: { ($0 as? SystemError)?.code == .connectionReset }
    }
}

/// `isQuiet`: how a connection kept for later is checked before it is used again.
@Suite struct SocketQuietTests {
    @Test func aConnectionWithNothingToReadIsQuiet() throws {
        let (a, b) = try socketPair()
        #expect(b.isQuiet)
        withExtendedLifetime(a) {}
    }

    @Test func unreadBytesMakeItNotQuiet() throws {
        let (a, b) = try socketPair()
        #expect(try a.writeAvailable(Array("E".utf8)) == 1)
        #expect(!b.isQuiet)
    }

    @Test func aPeerThatHungUpMakesItNotQuiet() throws {
        let (a, b) = try socketPair()
        a.close()
        #expect(!b.isQuiet)
    }

    @Test func aClosedSocketIsNotQuiet() throws {
        let (a, b) = try socketPair()
        b.close()
        #expect(!b.isQuiet)
        withExtendedLifetime(a) {}
    }
}
