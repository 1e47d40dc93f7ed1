import Foundation
import Testing
import SageSystem
import SageWire
@testable import SageCore

/// Servers that misbehave on purpose. Every probe must end with a clear reason within its deadline:
/// no crash, no hang, no unbounded allocation.
@Suite struct HostileServerTests {
    private func valkeyProbe(_ server: ScriptedServer, password: String? = nil) -> ValkeyProbe {
        ValkeyProbe(host: "127.0.0.1", port: server.port, password: password)
    }

    /// Runs a full wait and checks that it ended within `limitMs`.
    private func wait(_ probe: any Probe, deadlineMs: Int, limitMs: Double,
                      sourceLocation: SourceLocation = #_sourceLocation) -> ProbeWaitResult {
        let started = monotonicNanoseconds()
        let result = ProbeWaiter(attemptTimeoutMilliseconds: 500).wait(for: [probe], deadline: .after(milliseconds: deadlineMs))
        let took = millisecondsSince(started)
        #expect(took < limitMs, "the wait took \(took) ms", sourceLocation: sourceLocation)
        return result
    }

    @Test func garbageIsFatalAtOnce() throws {
        let server = try ScriptedServer { s, _ in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, [0x00, 0xFF, 0x13, 0x37] + Array("garbage\r\n".utf8))
        }
        defer { server.stop() }
        let result = wait(valkeyProbe(server), deadlineMs: 10_000, limitMs: 1000)
        let fatal = try #require(result.fatal)
        #expect(fatal.outcome.reason.contains("broke the RESP protocol"))
        #expect(fatal.outcome.reason.contains("unknown type byte"))
    }

    @Test func hugeLengthPrefixIsFatalWithoutAllocating() throws {
        let server = try ScriptedServer { s, _ in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, "$2147483648\r\n")  // 2 GiB, then nothing
        }
        defer { server.stop() }
        let result = wait(valkeyProbe(server), deadlineMs: 10_000, limitMs: 1000)
        let fatal = try #require(result.fatal)
        #expect(fatal.outcome.reason.contains("2147483648 bytes, over the"))
    }

    @Test func hugeAggregateCountIsFatal() throws {
        let server = try ScriptedServer { s, _ in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, "*2147483647\r\n:1\r\n")
        }
        defer { server.stop() }
        let result = wait(valkeyProbe(server), deadlineMs: 10_000, limitMs: 1000)
        #expect(try #require(result.fatal).outcome.reason.contains("elements, over the"))
    }

    @Test func respThatStallsForeverTimesOutWithAReason() throws {
        let server = try ScriptedServer { s, _ in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, "+PO")  // half a frame, then silence
        }
        defer { server.stop() }
        let result = wait(valkeyProbe(server), deadlineMs: 1200, limitMs: 2000)
        #expect(result.timedOut && result.fatal == nil)
        let reason = result.reports[0].outcome.reason
        #expect(reason.contains("only 3 bytes of a reply before the deadline"), "\(reason)")
        #expect(result.reports[0].attempts >= 1 && result.reports[0].attempts <= 3)
    }

    @Test func silentAcceptorTimesOutWithAReason() throws {
        let server = try ScriptedServer { s, _ in try ScriptedServer.readRequest(s) }
        defer { server.stop() }
        let result = wait(valkeyProbe(server), deadlineMs: 800, limitMs: 1600)
        #expect(result.timedOut)
        #expect(result.reports[0].outcome.reason.contains("no reply before the deadline"))
    }

    @Test func closeMidFrameIsNotReadyWithAReason() throws {
        let server = try ScriptedServer { s, _ in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, "$10\r\nabc")
            s.close()
        }
        defer { server.stop() }
        let result = wait(valkeyProbe(server), deadlineMs: 500, limitMs: 1500)
        #expect(result.timedOut)
        #expect(result.reports[0].outcome.reason.contains("closed the connection in the middle of a reply"))
        #expect(result.reports[0].attempts > 3, "a close is worth retrying quickly")
    }

    @Test func closeWithoutReplyIsNotReady() throws {
        let server = try ScriptedServer { s, _ in s.close() }
        defer { server.stop() }
        let outcome = valkeyProbe(server).check(deadline: .after(seconds: 2))
        #expect(!outcome.isReady && !outcome.isFatal)
        #expect(outcome.reason.contains("closed the connection") || outcome.reason.contains("reset"), "\(outcome.reason)")
    }

    @Test func httpServerOnTheValkeyPortIsFatal() throws {
        let server = try ScriptedServer { s, _ in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, ScriptedServer.httpResponse(400, "Bad Request", body: "bad"))
        }
        defer { server.stop() }
        let result = wait(valkeyProbe(server, password: "pw"), deadlineMs: 10_000, limitMs: 1000)
        let fatal = try #require(result.fatal)
        #expect(fatal.outcome.reason.contains("speaks HTTP, not RESP"))
    }

    @Test func loadingThenPongBecomesReady() throws {
        let server = try ScriptedServer { s, n in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, n < 2 ? "-LOADING Valkey is loading the dataset in memory\r\n" : "+PONG\r\n")
        }
        defer { server.stop() }
        let probe = valkeyProbe(server)
        #expect(probe.check(deadline: .after(seconds: 2)) == .notReady("valkey 127.0.0.1:\(server.port) is loading its dataset into memory (LOADING)"))
        let result = wait(probe, deadlineMs: 10_000, limitMs: 2000)
        #expect(result.allReady && result.reports[0].attempts == 2)
    }

    @Test func masterDownAndUnknownErrorsAreNotReady() throws {
        let server = try ScriptedServer { s, n in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, n == 0 ? "-MASTERDOWN Link with MASTER is down\r\n" : "-ERR max number of clients reached\r\n")
        }
        defer { server.stop() }
        let probe = valkeyProbe(server)
        #expect(probe.check(deadline: .after(seconds: 2)).reason.contains("MASTERDOWN"))
        let other = probe.check(deadline: .after(seconds: 2))
        #expect(!other.isFatal && other.reason.contains("max number of clients"))
    }

    @Test func nonPongReplyIsFatal() throws {
        let server = try ScriptedServer { s, _ in
            try ScriptedServer.readRequest(s)
            try ScriptedServer.send(s, ":42\r\n")
        }
        defer { server.stop() }
        let outcome = valkeyProbe(server).check(deadline: .after(seconds: 2))
        #expect(outcome.isFatal && outcome.reason.contains("instead of PONG"))
    }

    /// Valkey treats an HTTP request as a cross-protocol attack and hangs up without a reply: the probe
    /// cannot tell that from a server that is restarting, so it retries and reports the hang-up.
    @Test func httpProbeAgainstRealValkeyEndsWithAReasonAtTheDeadline() throws {
        let v = try TestValkey.make(password: nil)
        try v.waitForReadyLine()
        let result = wait(HTTPProbe(host: "127.0.0.1", port: v.port, path: "/"), deadlineMs: 600, limitMs: 1500)
        #expect(result.timedOut)
        #expect(result.reports[0].outcome.reason.contains("closed the connection without sending a response"))
        // Valkey itself is unharmed.
        #expect(ValkeyProbe(host: "127.0.0.1", port: v.port, password: nil).check(deadline: .after(seconds: 5)) == .ready("PONG"))
    }

    /// An HTTP probe against a RESP server that answers (as Valkey does to a lone inline command) is fatal.
    @Test func httpProbeAgainstARESPReplyIsFatal() throws {
        let server = try ScriptedServer { s, _ in
            _ = try ScriptedServer.readHTTPRequest(s)
            try ScriptedServer.send(s, "-ERR wrong number of arguments for 'get' command\r\n")
        }
        defer { server.stop() }
        let result = wait(HTTPProbe(host: "127.0.0.1", port: server.port, path: "/"), deadlineMs: 10_000, limitMs: 1000)
        let fatal = try #require(result.fatal)
        #expect(fatal.outcome.reason.contains("not an HTTP response"))
        #expect(fatal.outcome.reason.contains("Valkey or Redis"))
    }

    @Test func httpProbeAgainstGarbageAndHugeHeadersIsFatal() throws {
        let garbage = try ScriptedServer { s, _ in
            _ = try ScriptedServer.readHTTPRequest(s)
            try ScriptedServer.send(s, [0x16, 0x03, 0x01, 0x02, 0x00])
        }
        defer { garbage.stop() }
        let g = HTTPProbe(host: "127.0.0.1", port: garbage.port, path: "/").check(deadline: .after(seconds: 2))
        #expect(g.isFatal && g.reason.contains("TLS"))

        let huge = try ScriptedServer { s, _ in
            _ = try ScriptedServer.readHTTPRequest(s)
            try ScriptedServer.send(s, "HTTP/1.1 200 OK\r\nX-Filler: " + String(repeating: "a", count: 100_000))
        }
        defer { huge.stop() }
        let h = HTTPProbe(host: "127.0.0.1", port: huge.port, path: "/").check(deadline: .after(seconds: 2))
        #expect(h.isFatal && h.reason.contains("longer than"))
    }

    @Test func httpCloseMidResponseIsNotReady() throws {
        let server = try ScriptedServer { s, _ in
            _ = try ScriptedServer.readHTTPRequest(s)
            try ScriptedServer.send(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            s.close()
        }
        defer { server.stop() }
        let outcome = HTTPProbe(host: "127.0.0.1", port: server.port, path: "/").check(deadline: .after(seconds: 2))
        #expect(!outcome.isFatal && !outcome.isReady)
        #expect(outcome.reason.contains("closed the connection in the body"))
    }
}
