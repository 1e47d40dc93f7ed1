import Testing
import Foundation
import SageSystem
import SageWire
import SageCore

/// A server on a free loopback port that accepts one connection and misbehaves on purpose. After its
/// behaviour it holds the connection until the client hangs up, so a stall really stalls.
final class HostilePostgresFake: @unchecked Sendable {
    let listener: Listener
    private let done = DispatchSemaphore(value: 0)
    var port: Int { listener.port }

    init(_ behaviour: @escaping @Sendable (FakeConnection) throws -> Void) throws {
        listener = try Listener.tcp(port: 0)
        let listener = self.listener, done = self.done
        Thread {
            defer { done.signal() }
            guard let socket = try? listener.accept(deadline: .after(seconds: 10)) else { return }
            let connection = FakeConnection(socket)
            try? behaviour(connection)
            let until = Deadline.after(seconds: 10)
            while let b = try? socket.read(deadline: until), !b.isEmpty {}
            socket.close()
        }.start()
    }

    /// Waits for the fake's thread to end (the client hung up), then stops listening.
    @discardableResult
    func finish() -> Bool {
        defer { listener.close() }
        return done.wait(timeout: .now() + 15) == .success
    }

    var probe: PostgresProbe { PostgresProbe(host: "127.0.0.1", port: port, user: "sage", password: "pw", database: "sage") }
}

/// The fake's end of the connection, with just enough PostgreSQL framing to read what the client sends.
final class FakeConnection: @unchecked Sendable {
    let socket: Socket
    private var buffer: [UInt8] = []
    init(_ socket: Socket) { self.socket = socket }

    private func fill(_ count: Int) throws {
        while buffer.count < count {
            let b = try socket.read(deadline: .after(seconds: 5))
            if b.isEmpty { throw TestFailure("client closed") }
            buffer += b
        }
    }

    /// The StartupMessage (no type byte).
    @discardableResult
    func readStartup() throws -> [UInt8] {
        try fill(4)
        let length = Int(Bytes.readUInt32(buffer, at: 0))
        try fill(length)
        defer { buffer.removeFirst(length) }
        return Array(buffer[4..<length])
    }

    /// A typed message: (type, body).
    func readMessage() throws -> (UInt8, [UInt8]) {
        try fill(5)
        let length = Int(Bytes.readUInt32(buffer, at: 1))
        try fill(1 + length)
        defer { buffer.removeFirst(1 + length) }
        return (buffer[0], Array(buffer[5..<1 + length]))
    }

    func send(_ bytes: [UInt8]) throws { try socket.write(bytes, deadline: .after(seconds: 5)) }
    func send(_ text: String) throws { try send(Array(text.utf8)) }
}

private func frame(_ type: Character, _ body: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [type.asciiValue!]
    Bytes.appendUInt32(UInt32(body.count + 4), to: &out)
    return out + body
}
private func int32(_ v: Int32) -> [UInt8] { var o = [UInt8](); Bytes.appendInt32(v, to: &o); return o }

@Suite struct PostgresHostileTests {
    /// Runs the probe against a fake and checks how fast and how it ended.
    static func probe(_ fake: HostilePostgresFake, deadlineMilliseconds: Int = 2000) -> (ProbeOutcome, Double) {
        let start = monotonicNanoseconds()
        let outcome = fake.probe.check(deadline: .after(milliseconds: deadlineMilliseconds))
        let elapsed = millisecondsSince(start)
        #expect(fake.finish(), "the fake's connection ended")
        return (outcome, elapsed)
    }

    @Test func garbageBytes() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send([0x00, 0x01, 0x02] + Array("garbage\u{7f}".utf8))
        }
        let (outcome, elapsed) = Self.probe(fake)
        #expect(outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("not a PostgreSQL server"), "\(outcome)")
        #expect(elapsed < 1000)
    }

    @Test func twoGibibyteLengthPrefix() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send([UInt8(ascii: "R"), 0x80, 0, 0, 0])
            try c.send([UInt8](repeating: 0x41, count: 65536))  // and some of the promised body
        }
        let (outcome, elapsed) = Self.probe(fake)
        #expect(outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("2147483648 bytes, over the 64 MiB limit"), "\(outcome)")
        #expect(elapsed < 1000)
    }

    @Test func halfAFrameThenStall() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send(Array(frame("R", int32(5) + [1, 2, 3, 4]).prefix(7)))
        }
        let (outcome, elapsed) = Self.probe(fake, deadlineMilliseconds: 300)
        #expect(!outcome.isReady && !outcome.isFatal, "a stall is worth retrying: \(outcome)")
        #expect(outcome.reason.contains("before the deadline") && outcome.reason.contains("7 of the 13 bytes"), "\(outcome)")
        #expect(elapsed >= 290 && elapsed < 800, "ended after \(elapsed) ms")
    }

    @Test func silentServer() throws {
        let fake = try HostilePostgresFake { c in try c.readStartup() }
        let (outcome, elapsed) = Self.probe(fake, deadlineMilliseconds: 250)
        #expect(outcome == .notReady("no answer from 127.0.0.1:\(fake.port) before the deadline"))
        #expect(elapsed < 800)
    }

    @Test func closeMidFrame() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send(Array(frame("R", int32(5) + [1, 2, 3, 4]).prefix(7)))
            c.socket.close()
        }
        let (outcome, elapsed) = Self.probe(fake)
        #expect(!outcome.isReady && !outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("closed the connection in the middle of a message (7 of the 13 bytes"), "\(outcome)")
        #expect(elapsed < 1000)
    }

    @Test func closeWithoutAWord() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            c.socket.close()
        }
        let (outcome, _) = Self.probe(fake)
        #expect(!outcome.isReady && !outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("closed the connection during startup"), "\(outcome)")
    }

    @Test func tlsOnlyServer() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send([UInt8(ascii: "S"), 0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03] + [UInt8](repeating: 0xa5, count: 40))
        }
        let (outcome, elapsed) = Self.probe(fake)
        #expect(outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("TLS"), "\(outcome)")
        #expect(elapsed < 1000)
    }

    @Test func httpServerOnThePostgresPort() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nBad Request")
            c.socket.close()
        }
        let (outcome, elapsed) = Self.probe(fake)
        #expect(outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("this is an HTTP server, not PostgreSQL (it answered \"HTTP/1.1 400 Bad Request\")"), "\(outcome)")
        #expect(elapsed < 1000)
    }

    /// Valkey reads the startup message as the start of an inline command and waits for its newline,
    /// so the probe meets silence: a clear "no answer" when its deadline passes, not a hang.
    @Test func realValkeyOnThePostgresPort() throws {
        let valkey = try TestValkey.make()
        try valkey.waitForReadyLine()
        let probe = PostgresProbe(host: "127.0.0.1", port: valkey.port, user: "sage", password: "pw", database: "sage")
        let start = monotonicNanoseconds()
        let outcome = probe.check(deadline: .after(milliseconds: 500))
        let elapsed = millisecondsSince(start)
        #expect(outcome == .notReady("no answer from 127.0.0.1:\(valkey.port) before the deadline"))
        #expect(elapsed >= 490 && elapsed < 1500, "ended after \(elapsed) ms")
    }

    /// A server that runs SCRAM properly up to the end, then sends a signature that does not prove the password.
    @Test func scramServerWithAWrongSignature() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send(frame("R", int32(10) + Array("SCRAM-SHA-256".utf8) + [0, 0]))
            let (_, initial) = try c.readMessage()
            let clientFirst = String(decoding: initial.drop(while: { $0 != 0 }).dropFirst(5), as: UTF8.self)
            let nonce = clientFirst.split(separator: ",").first { $0.hasPrefix("r=") }!.dropFirst(2)
            try c.send(frame("R", int32(11) + Array("r=\(nonce)SERVER,s=\(Base64.encode(Array("salt".utf8))),i=4096".utf8)))
            _ = try c.readMessage()
            try c.send(frame("R", int32(12) + Array("v=\(Base64.encode([UInt8](repeating: 9, count: 32)))".utf8)))
            try c.send(frame("R", int32(0)))
        }
        let (outcome, elapsed) = Self.probe(fake)
        #expect(outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("signature is wrong"), "\(outcome)")
        #expect(elapsed < 1000)
    }

    @Test func scramServerThatSkipsItsSignature() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send(frame("R", int32(10) + Array("SCRAM-SHA-256".utf8) + [0, 0]))
            _ = try c.readMessage()
            try c.send(frame("R", int32(0)))  // "OK" without any proof
        }
        let (outcome, _) = Self.probe(fake)
        #expect(outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("without proving it knows the password"), "\(outcome)")
    }

    @Test func scramServerWithAHugeIterationCount() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try c.send(frame("R", int32(10) + Array("SCRAM-SHA-256".utf8) + [0, 0]))
            let (_, initial) = try c.readMessage()
            let clientFirst = String(decoding: initial.drop(while: { $0 != 0 }).dropFirst(5), as: UTF8.self)
            let nonce = clientFirst.split(separator: ",").first { $0.hasPrefix("r=") }!.dropFirst(2)
            try c.send(frame("R", int32(11) + Array("r=\(nonce)X,s=c2FsdA==,i=2000000000".utf8)))
        }
        let (outcome, elapsed) = Self.probe(fake)
        #expect(outcome.isFatal, "\(outcome)")
        #expect(outcome.reason.contains("2000000000 iterations"), "\(outcome)")
        #expect(elapsed < 1000)
    }

    @Test func startingUpIsNotReadyYet() throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            var body = [UInt8]()
            for (k, v) in [("S", "FATAL"), ("V", "FATAL"), ("C", "57P03"), ("M", "the database system is starting up")] {
                body += Array(k.utf8) + Array(v.utf8) + [0]
            }
            try c.send(frame("E", body + [0]))
            c.socket.close()
        }
        let (outcome, _) = Self.probe(fake)
        #expect(outcome == .notReady("127.0.0.1:\(fake.port): the database system is starting up (SQLSTATE 57P03)"))
    }

    @Test func nothingListening() {
        let port = freePort()
        let probe = PostgresProbe(host: "127.0.0.1", port: port, user: "sage", password: "pw", database: "sage")
        let outcome = probe.check(deadline: .after(seconds: 2))
        #expect(outcome == .notReady("127.0.0.1:\(port): connection refused: nothing listens there (yet)"))
        #expect(probe.target == "postgres://sage:****@127.0.0.1:\(port)/sage")
        #expect(!probe.target.contains("pw"))
    }
}
