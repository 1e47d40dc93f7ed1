import Testing
import Glibc
@testable import SageSystem

@Suite struct SocketTests {
    @Test func connectsReadsAndWritesWithDeadlines() throws {
        let l = try Listener.tcp(port: 0)
        let client = try Socket.connect(host: "127.0.0.1", port: l.port, deadline: .after(seconds: 2))
        let server = try l.accept(deadline: .after(seconds: 2))
        try client.write(Array("ping".utf8), deadline: .after(seconds: 2))
        #expect(try server.read(deadline: .after(seconds: 2)) == Array("ping".utf8))
        server.close()
        #expect(try client.read(deadline: .after(seconds: 2)).isEmpty)  // EOF
    }

    @Test func readTimesOutOnSilentPeer() throws {
        let l = try Listener.tcp(port: 0)
        let client = try Socket.connect(host: "127.0.0.1", port: l.port, deadline: .after(seconds: 2))
        let start = monotonicNanoseconds()
        #expect { try client.read(deadline: .after(milliseconds: 100)) } throws: { ($0 as? SystemError)?.code == .timedOut }
        #expect(millisecondsSince(start) >= 99)
    }

    @Test func refusedIsReported() throws {
        let l = try Listener.tcp(port: 0)
        let port = l.port
        l.close()
        #expect { try Socket.connect(host: "127.0.0.1", port: port, deadline: .after(seconds: 2)) } throws: {
            ($0 as? SystemError)?.code == .connectionRefused
        }
    }

    @Test func unixSocketModeAndPeerCredentials() throws {
        var template = Array("/tmp/sagedev-sock-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = unlink(dir + "/s.sock"); rmdir(dir) }
        let l = try Listener.unix(path: dir + "/s.sock", mode: 0o600)
        var st = stat()
        #expect(stat(dir + "/s.sock", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let c = try Socket.connect(unixPath: dir + "/s.sock", deadline: .after(seconds: 2))
        let s = try l.accept(deadline: .after(seconds: 2))
        let cred = try s.peerCredentials()
        #expect(cred.uid == getuid())
        #expect(cred.pid == getpid())
        _ = c
    }

    @Test func overlongUnixPathIsRejected() {
        #expect(throws: SystemError.self) { try Listener.unix(path: "/tmp/" + String(repeating: "x", count: 200)) }
    }
}
