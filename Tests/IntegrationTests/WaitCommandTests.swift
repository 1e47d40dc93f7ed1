import Foundation
import Testing
import SageSystem
@testable import SageCLI

/// Captures what `sagedev wait` prints.
private final class WaitOutput: @unchecked Sendable {
    let out = Locked(""), err = Locked("")
    var all: String { out.current + err.current }
    var context: CommandContext {
        CommandContext(output: Output(isTTY: false, useColour: false,
                                      out: { s in self.out.withValue { $0 += s } },
                                      err: { s in self.err.withValue { $0 += s } }),
                       environment: [:], workingDirectory: "/tmp", stdinIsTTY: false,
                       readLine: { nil }, executablePath: "/bin/false")
    }
    var outLines: [String] { out.current.split(separator: "\n").map(String.init) }
    var errLines: [String] { err.current.split(separator: "\n").map(String.init) }
}

/// `sagedev wait` end to end, through the command table, against real Valkey and PostgreSQL servers.
@Suite struct WaitCommandTests {
    static let secret = "Wait-S3cret-xyzzy"

    private func run(_ args: [String]) -> (Int32, WaitOutput, Double) {
        let o = WaitOutput()
        let started = monotonicNanoseconds()
        let code = SageCLI.run(["wait"] + args, context: o.context)
        return (code, o, millisecondsSince(started))
    }

    private func httpServer(status: Int = 200) throws -> ScriptedServer {
        try ScriptedServer { s, _ in
            _ = try ScriptedServer.readHTTPRequest(s)
            try ScriptedServer.send(s, ScriptedServer.httpResponse(status, status == 200 ? "OK" : "Service Unavailable"))
        }
    }

    @Test func allReadyExitsZeroWithOneLinePerTarget() throws {
        let v = try TestValkey.make(password: Self.secret)
        try v.waitForReadyLine()
        let http = try httpServer()
        defer { http.stop() }
        let tcp = try Listener.tcp(port: 0)
        defer { tcp.close() }
        let (code, o, _) = run(["valkey://:\(Self.secret)@127.0.0.1:\(v.port)", "http://127.0.0.1:\(http.port)/healthz",
                                "tcp://127.0.0.1:\(tcp.port)"])
        #expect(code == 0, "\(o.all)")
        #expect(o.outLines.count == 3)
        #expect(o.out.current.contains("valkey://:****@127.0.0.1:\(v.port) ready in "))
        #expect(o.out.current.contains("http://127.0.0.1:\(http.port)/healthz ready in "))
        #expect(o.out.current.contains("tcp://127.0.0.1:\(tcp.port) ready in "))
        for line in o.outLines { #expect(line.hasSuffix(" ms") && Int(line.split(separator: " ").dropLast().last ?? "") != nil, "\(line)") }
        #expect(o.err.current.isEmpty)
        #expect(!o.all.contains(Self.secret))
    }

    @Test func jsonPrintsOneObjectPerTarget() throws {
        let v = try TestValkey.make(password: Self.secret)
        try v.waitForReadyLine()
        let closed = freePort()
        let (code, o, _) = run(["--json", "--timeout", "0.5", "redis://default:\(Self.secret)@127.0.0.1:\(v.port)/0", "tcp://127.0.0.1:\(closed)"])
        #expect(code == 1)
        #expect(!o.all.contains(Self.secret))
        let objects = try o.outLines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.count == 2)
        let ready = try #require(objects.first { $0["state"] as? String == "ready" })
        #expect(ready["url"] as? String == "redis://default:****@127.0.0.1:\(v.port)/0")
        #expect(ready["kind"] as? String == "valkey")
        #expect(ready["reason"] as? String == "PONG")
        #expect((ready["elapsed_ms"] as? Double ?? -1) >= 0)
        #expect((ready["attempts"] as? Int ?? 0) >= 1)
        let waiting = try #require(objects.first { $0["state"] as? String == "not_ready" })
        #expect(waiting["url"] as? String == "tcp://127.0.0.1:\(closed)")
        #expect((waiting["reason"] as? String ?? "").contains("connection refused"))
        #expect(o.err.current.contains("timed out after 0.5 s with 1 of 2 targets not ready"))
    }

    @Test func timeoutExitsOneAndListsEveryUnreadyTarget() throws {
        let v = try TestValkey.make(password: nil)
        try v.waitForReadyLine()
        let down = try httpServer(status: 503)
        defer { down.stop() }
        let closed = freePort()
        let (code, o, took) = run(["--timeout", "1", "valkey://127.0.0.1:\(v.port)", "tcp://127.0.0.1:\(closed)",
                                   "http://127.0.0.1:\(down.port)/ready"])
        #expect(code == 1)
        #expect(took >= 990 && took < 3000, "took \(took) ms")
        #expect(o.outLines.count == 1 && o.out.current.contains("valkey://127.0.0.1:\(v.port) ready in"))
        #expect(o.err.current.contains("tcp://127.0.0.1:\(closed) not ready: tcp://127.0.0.1:\(closed): connection refused"))
        #expect(o.err.current.contains("http://127.0.0.1:\(down.port)/ready not ready: http://127.0.0.1:\(down.port)/ready answered HTTP 503"))
        #expect(o.err.current.contains("sagedev wait: timed out after 1 s with 2 of 3 targets not ready"))
    }

    @Test func wrongPasswordEndsTheWaitAtOnceWithoutPrintingIt() throws {
        let v = try TestValkey.make(password: Self.secret)
        try v.waitForReadyLine()
        let closed = freePort()
        let wrong = "Wrong-Pass-plugh"
        let (code, o, took) = run(["--timeout", "30", "valkey://:\(wrong)@127.0.0.1:\(v.port)", "tcp://127.0.0.1:\(closed)"])
        #expect(code == 1)
        #expect(took < 1000, "a fatal outcome took \(took) ms to end the wait")
        #expect(!o.all.contains(wrong) && !o.all.contains(Self.secret))
        #expect(o.errLines.first?.hasPrefix("valkey://:****@127.0.0.1:\(v.port) failed: ") == true, "\(o.err.current)")
        #expect(o.err.current.contains("check VALKEY_PASSWORD in .env"))
        #expect(o.err.current.contains("tcp://127.0.0.1:\(closed) not ready"))
        #expect(o.err.current.contains("cannot become ready"))

        let (jsonCode, j, _) = run(["--json", "--timeout", "30", "valkey://:\(wrong)@127.0.0.1:\(v.port)"])
        #expect(jsonCode == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data((j.outLines.first ?? "").utf8)) as? [String: Any])
        #expect(object["state"] as? String == "fatal")
        #expect(!j.all.contains(wrong))
    }

    @Test func postgresTargetsUseTheRealServer() throws {
        let pg = try TestPostgres.make(auth: .scram, password: Self.secret)
        try pg.waitForReadyLine()
        let url = "postgresql://\(pg.user):\(Self.secret)@127.0.0.1:\(pg.port)/\(pg.database)"
        let (code, o, _) = run([url])
        #expect(code == 0, "\(o.all)")
        #expect(o.out.current.contains("postgresql://\(pg.user):****@127.0.0.1:\(pg.port)/\(pg.database) ready in"))
        #expect(!o.all.contains(Self.secret))

        let (bad, b, took) = run(["--timeout", "30", "postgres://\(pg.user):nope-\(Self.secret)@127.0.0.1:\(pg.port)/\(pg.database)"])
        #expect(bad == 1)
        #expect(took < 1000)
        #expect(b.err.current.contains("POSTGRES_PASSWORD"))
        #expect(!b.all.contains(Self.secret))
    }

    @Test func malformedURLsExit64WithoutPrintingPasswords() {
        let cases = ["redis://:\(Self.secret)@127.0.0.1:99999", "ftp://127.0.0.1:21", "127.0.0.1:6379",
                     "tcp://127.0.0.1", "postgres://u:\(Self.secret)@h/db?sslmode=require", "valkey://:\(Self.secret)@::1"]
        for url in cases {
            let (code, o, _) = run(["valkey://127.0.0.1:6379", url])
            #expect(code == 64, "\(url): \(o.all)")
            #expect(o.err.current.hasPrefix("sagedev wait: "), "\(o.err.current)")
            #expect(o.out.current.isEmpty)
            #expect(!o.all.contains(Self.secret), "\(o.all)")
        }
    }

    @Test func usageErrorsExit64() {
        let (none, n, _) = run([])
        #expect(none == 64 && n.err.current.contains("at least one URL"))
        let (badTimeout, b, _) = run(["--timeout", "soon", "tcp://127.0.0.1:1"])
        #expect(badTimeout == 64 && b.err.current.contains("--timeout"))
        let (negative, _, _) = run(["--timeout", "-1", "tcp://127.0.0.1:1"])
        #expect(negative == 64)
        let (unknown, u, _) = run(["--tiemout", "5", "tcp://127.0.0.1:1"])
        #expect(unknown == 64 && u.err.current.contains("did you mean --timeout"))
    }

    @Test func helpDescribesTheURLForms() {
        let o = WaitOutput()
        #expect(SageCLI.run(["wait", "--help"], context: o.context) == 0)
        for form in ["postgres://", "valkey://", "http://", "tcp://", "--timeout", "--json"] {
            #expect(o.out.current.contains(form))
        }
    }
}
