import Testing
import Glibc
import Foundation
import SageSystem
@testable import SageCore

/// The real daemon against hostile clients on its control socket.
@Suite struct ControlSocketTests {
    /// Sends raw bytes and returns the reply lines read until `lines` arrived or the peer closed.
    func exchange(_ socket: Socket, _ bytes: [UInt8], lines: Int, deadline: Deadline = .after(seconds: 10)) throws -> [String] {
        try socket.write(bytes, deadline: deadline)
        var buf = [UInt8]()
        while buf.filter({ $0 == 10 }).count < lines {
            let chunk = try socket.read(deadline: deadline)
            if chunk.isEmpty { break }
            buf += chunk
        }
        return String(decoding: buf, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func garbageOversizeStallsAndOtherUidsLeaveTheDaemonServing() throws {
        let p = try TestProject(processEnvironment: ["SAGEDEV_CONTROL_STALL_SECONDS": "0.5"])
        let up = try p.sagedev(["up", "valkey"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let daemonPid = Int32(((try p.status())["daemon"] as? [String: Any])?["pid"] as? Int ?? 0)
        #expect(daemonPid > 0)
        let socketPath = p.root + "/.sagedev/run/sagedev.sock"

        // Malformed JSON, wrong shapes, unknown commands, wrong versions, binary junk: each gets an error reply.
        let c = try Socket.connect(unixPath: socketPath, deadline: .after(seconds: 2))
        let replies = try exchange(c, Array("{nope\n[1,2]\n{\"v\":2,\"id\":3}\n{\"v\":2,\"id\":4,\"cmd\":\"frobnicate\"}\n{\"v\":9,\"id\":5,\"cmd\":\"ping\"}\n\u{01}\u{02}\u{ff}\n".utf8), lines: 6)
        #expect(replies.count == 6)
        #expect(replies.allSatisfy { $0.contains("\"ok\":false") })
        #expect(replies[0].contains("malformed JSON"))
        #expect(replies[1].contains("must be a JSON object"))
        #expect(replies[2].contains("needs a \\\"cmd\\\" string"))
        #expect(replies[3].contains("unknown-command") && replies[3].contains("frobnicate"))
        #expect(replies[4].contains("protocol version 9"))
        #expect(replies[5].contains("malformed JSON"))

        // 10,000 random or malformed requests: the daemon lives on and its memory stays flat.
        var rng = SystemRandomNumberGenerator()
        func junk(_ n: Int) -> [UInt8] {
            var out = [UInt8]()
            for i in 0..<n {
                switch i % 4 {
                case 0: out += Array("{\"v\":2,\"id\":\(i),\"cmd\":\"\(UInt64.random(in: 0...UInt64.max, using: &rng))\"}\n".utf8)
                // Random bytes, never a blank line (blank lines are keep-alives the daemon ignores without a reply).
                case 1: out += [UInt8(ascii: "#")] + (0..<Int.random(in: 0...63, using: &rng)).map { _ in UInt8.random(in: 11...255, using: &rng) } + [10]
                case 2: out += Array("{\"v\":2,\"id\":\"x\",\"cmd\":[\(i)],\"args\":{\"services\":\"all\"}}\n".utf8)
                default: out += Array("{\"v\":2,\"id\":\(i),\"cmd\":\"logs\",\"args\":{\"services\":[\"nope\"]}}\n".utf8)
                }
            }
            return out
        }
        _ = try exchange(c, junk(1000), lines: 1000, deadline: .after(seconds: 60))
        let rssBefore = try #require(ProcFS.residentSetBytes(pid: daemonPid))
        for _ in 0..<9 { #expect(try exchange(c, junk(1000), lines: 1000, deadline: .after(seconds: 60)).count == 1000) }
        let rssAfter = try #require(ProcFS.residentSetBytes(pid: daemonPid))
        #expect(rssAfter - rssBefore < 4 << 20, "RSS grew from \(rssBefore) to \(rssAfter)")

        // A request line over 1 MiB is refused and the connection closed.
        let big = try Socket.connect(unixPath: socketPath, deadline: .after(seconds: 2))
        let tooLarge = try exchange(big, [UInt8](repeating: UInt8(ascii: "a"), count: (1 << 20) + 4096), lines: 1)
        #expect(tooLarge.first?.contains("too-large") == true)
        #expect(try big.read(deadline: .after(seconds: 5)).isEmpty)

        // A client that stalls mid-line is disconnected after the stall limit.
        let staller = try Socket.connect(unixPath: socketPath, deadline: .after(seconds: 2))
        let stalled = try exchange(staller, Array("{\"v\":2,\"cmd\":\"sta".utf8), lines: 1)
        #expect(stalled.first?.contains("incomplete request") == true)
        #expect(try staller.read(deadline: .after(seconds: 5)).isEmpty)

        // Another uid cannot connect: first the 0700 directory stops it…
        let client = """
        import socket,sys
        s=socket.socket(socket.AF_UNIX)
        try:
            s.connect(sys.argv[1])
        except OSError as e:
            print("refused", e.errno); sys.exit(0)
        s.settimeout(5)
        try:
            s.sendall(b'{"v":2,"id":1,"cmd":"status"}\\n')
        except OSError:
            pass
        print(s.recv(65536).decode().strip())
        """
        let asNobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "/usr/bin/python3", "-c", client, socketPath]
        let denied = try Subprocess.run(asNobody, deadline: .after(seconds: 10))
        #expect(denied.stdoutText.hasPrefix("refused 13"), "\(denied.stdoutText) \(denied.stderrText)")
        // …and with the directory opened up, SO_PEERCRED still refuses it.
        chmod(p.root + "/.sagedev/run", 0o711); chmod(socketPath, 0o666)
        let forbidden = try Subprocess.run(asNobody, deadline: .after(seconds: 10))
        chmod(p.root + "/.sagedev/run", 0o700); chmod(socketPath, 0o600)
        #expect(forbidden.stdoutText.contains("forbidden"), "\(forbidden.stdoutText) \(forbidden.stderrText)")
        #expect(!forbidden.stdoutText.contains("services"))

        // Still serving.
        #expect(ProcFS.isAlive(pid: daemonPid, startTime: nil))
        #expect(try p.sagedev(["status"]).stdoutText.contains("valkey"))
    }

    /// A client that sends a burst and reads its replies only afterwards: more than the socket holds, so the daemon
    /// waits for the socket to take more, several times, and every reply still arrives, in order.
    @Test func repliesBeyondWhatTheSocketHoldsReachAClientThatReadsLate() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up", "valkey"]).status == .exited(0))
        let c = try Socket.connect(unixPath: p.root + "/.sagedev/run/sagedev.sock", deadline: .after(seconds: 2))
        let n = 20_000
        var burst = [UInt8]()
        for i in 0..<n { burst += Array("{\"v\":2,\"id\":\(i),\"cmd\":\"ping\"}\n".utf8) }
        try c.write(burst, deadline: .after(seconds: 30))
        // Nothing read yet: the replies back up in the daemon until the socket drains.
        var buf = [UInt8]()
        var lines = 0
        let deadline = Deadline.after(seconds: 60)
        while lines < n, !deadline.hasPassed {
            let chunk = try c.read(deadline: deadline)
            if chunk.isEmpty { break }
            lines += chunk.filter { $0 == 10 }.count
            buf += chunk
        }
        let replies = String(decoding: buf, as: UTF8.self).split(separator: "\n")
        #expect(replies.count == n, "\(replies.count) replies of \(n)")
        #expect(replies.first?.contains("\"id\":0") == true && replies.last?.contains("\"id\":\(n - 1)") == true)
        #expect(replies.allSatisfy { $0.contains("\"ok\":true") })
        #expect(buf.count > 256 << 10, "only \(buf.count) bytes: the socket never filled")
        c.close()
        #expect(try p.sagedev(["status"]).stdoutText.contains("valkey"), "the daemon stopped serving")
    }
}
