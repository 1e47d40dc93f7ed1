import Foundation
import Testing
import SageSystem
import SageWire
@testable import SageCore

/// The HTTP probe and client against in-test servers and a real HTTP implementation (Node's http module).
@Suite struct HTTPProbeTests {
    @Test func twoHundredIsReadyAndTheRequestIsWellFormed() throws {
        let request = Locked("")
        let server = try ScriptedServer { socket, _ in
            let head = try ScriptedServer.readHTTPRequest(socket)
            request.withValue { $0 = head }
            try ScriptedServer.send(socket, ScriptedServer.httpResponse(200, "OK", body: "{\"ok\":true}"))
        }
        defer { server.stop() }
        let probe = HTTPProbe(host: "127.0.0.1", port: server.port, path: "/healthz")
        #expect(probe.target == "http://127.0.0.1:\(server.port)/healthz")
        #expect(probe.check(deadline: .after(seconds: 5)) == .ready("HTTP 200 OK"))
        let lines = request.current.components(separatedBy: "\r\n")
        #expect(lines.first == "GET /healthz HTTP/1.1")
        #expect(lines.contains("Host: 127.0.0.1:\(server.port)"))
        #expect(lines.contains("Connection: close"))
        #expect(request.current.hasSuffix("\r\n\r\n"))
    }

    @Test func fiveHundredIsNotReadyUntilItTurnsTwoHundred() throws {
        let server = try ScriptedServer { socket, n in
            _ = try ScriptedServer.readHTTPRequest(socket)
            try ScriptedServer.send(socket, n < 3 ? ScriptedServer.httpResponse(503, "Service Unavailable", body: "starting")
                                                  : ScriptedServer.httpResponse(204, "No Content"))
        }
        defer { server.stop() }
        let probe = HTTPProbe(host: "127.0.0.1", port: server.port, path: "/")
        let first = probe.check(deadline: .after(seconds: 5))
        #expect(first == .notReady("http://127.0.0.1:\(server.port)/ answered HTTP 503 Service Unavailable"))
        let result = ProbeWaiter().wait(for: [probe], deadline: .after(seconds: 10))
        #expect(result.allReady)
        #expect(result.reports[0].outcome == .ready("HTTP 204 No Content"))
        #expect(result.reports[0].attempts == 3)
    }

    @Test func fiveHundredUntilTheDeadlineTimesOutWithTheStatusAsReason() throws {
        let server = try ScriptedServer { socket, _ in
            _ = try ScriptedServer.readHTTPRequest(socket)
            try ScriptedServer.send(socket, ScriptedServer.httpResponse(500, "Internal Server Error"))
        }
        defer { server.stop() }
        let started = monotonicNanoseconds()
        let result = ProbeWaiter().wait(for: [HTTPProbe(host: "127.0.0.1", port: server.port, path: "/")], deadline: .after(milliseconds: 400))
        #expect(result.timedOut)
        #expect(millisecondsSince(started) < 1500)
        #expect(result.reports[0].outcome.reason.contains("HTTP 500 Internal Server Error"))
    }

    @Test func fourHundredFourIsNotReadyWithAHint() throws {
        let server = try ScriptedServer { socket, _ in
            _ = try ScriptedServer.readHTTPRequest(socket)
            try ScriptedServer.send(socket, ScriptedServer.httpResponse(404, "Not Found"))
        }
        defer { server.stop() }
        let outcome = HTTPProbe(host: "127.0.0.1", port: server.port, path: "/nope").check(deadline: .after(seconds: 5))
        #expect(!outcome.isReady && !outcome.isFatal)
        #expect(outcome.reason.contains("404 Not Found") && outcome.reason.contains("expected 2xx"))
    }

    @Test func stallingServerIsNotReadyWithinTheAttemptDeadline() throws {
        let server = try ScriptedServer { socket, _ in _ = try ScriptedServer.readHTTPRequest(socket) }
        defer { server.stop() }
        let started = monotonicNanoseconds()
        let outcome = HTTPProbe(host: "127.0.0.1", port: server.port, path: "/").check(deadline: .after(milliseconds: 300))
        let took = millisecondsSince(started)
        #expect(outcome == .notReady("http 127.0.0.1:\(server.port): no response before the deadline"))
        #expect(took >= 290 && took < 1000)
    }

    @Test func refusedIsNotReady() {
        let port = freePort()
        let outcome = HTTPProbe(host: "127.0.0.1", port: port, path: "/").check(deadline: .after(seconds: 2))
        #expect(outcome == .notReady("http://127.0.0.1:\(port)/: connection refused (not listening yet)"))
    }

    @Test func clientReadsStatusHeadersAndBodyFromARealHTTPServer() throws {
        let node = try NodeHTTPServer()
        defer { node.stop() }
        let r = try HTTPClient.get(host: "127.0.0.1", port: node.port, path: "/version", deadline: .after(seconds: 5))
        #expect(r.status == 200)
        #expect(r.header("x-version") == "1.2.3")
        #expect(r.bodyText == "{\"version\":\"1.2.3\"}")
        // Node frames a body written in parts with chunked transfer encoding.
        let chunked = try HTTPClient.get(host: "127.0.0.1", port: node.port, path: "/chunked", deadline: .after(seconds: 5))
        #expect(chunked.header("transfer-encoding") == "chunked")
        #expect(chunked.bodyText == "part one, part two")
        let down = try HTTPClient.get(host: "127.0.0.1", port: node.port, path: "/down", deadline: .after(seconds: 5))
        #expect(down.status == 503 && down.bodyText == "down")
        #expect(HTTPProbe(host: "127.0.0.1", port: node.port, path: "/version").check(deadline: .after(seconds: 5)) == .ready("HTTP 200 OK"))
        #expect(HTTPProbe(host: "127.0.0.1", port: node.port, path: "/down").check(deadline: .after(seconds: 5)).isReady == false)
        // A large body is cut at the cap without failing.
        let big = try HTTPClient.get(host: "127.0.0.1", port: node.port, path: "/big",
                                     limits: HTTPLimits(maxHeadBytes: 8192, maxHeaderCount: 50, maxBodyBytes: 1000), deadline: .after(seconds: 5))
        #expect(big.status == 200 && big.body.count == 1000 && big.bodyTruncated)
    }
}

/// A real HTTP server: Node's http module, on a free port it reports through a file.
final class NodeHTTPServer: @unchecked Sendable {
    let port: Int
    private let process: ChildProcess
    private let directory: String

    init() throws {
        directory = makeTempDirectory("sagedev-http")
        let portFile = directory + "/port"
        let script = """
        const http = require('http');
        const s = http.createServer((q, r) => {
          if (q.url === '/version') { r.setHeader('X-Version', '1.2.3'); r.end(JSON.stringify({version: '1.2.3'})); }
          else if (q.url === '/chunked') { r.write('part one, '); r.end('part two'); }
          else if (q.url === '/down') { r.statusCode = 503; r.end('down'); }
          else if (q.url === '/big') { r.end('x'.repeat(1 << 20)); }
          else { r.statusCode = 404; r.end(); }
        });
        s.listen(0, '127.0.0.1', () => require('fs').writeFileSync(process.argv[1], String(s.address().port)));
        """
        guard let node = ProcessEnvironment.which("node") else { throw TestFailure("node is not on PATH: run scripts/bootstrap.sh") }
        process = try Spawner.spawn(SpawnSpec(executable: node, arguments: [node, "-e", script, portFile],
                                              environment: ["PATH": "/usr/bin:/bin"], stdout: .null, stderr: .null))
        var found: Int?
        waitUntil(.after(seconds: 10)) {
            found = FileDescriptor.readText(portFile).flatMap { Int($0) }
            return found != nil
        }
        guard let p = found else { process.terminate(.standard(graceMilliseconds: 1000)); throw TestFailure("node did not start") }
        port = p
    }

    func stop() {
        process.terminate(.standard(graceMilliseconds: 2000))
        removeTree(directory)
    }
}
