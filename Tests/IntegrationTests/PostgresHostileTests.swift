import Testing
import Foundation
import SageSystem
import SageWire
import SageCore
import SageFuzz

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

extension FakeConnection {
    /// Reads the SASLInitialResponse and returns the client's nonce from its client-first message.
    func readSCRAMClientNonce() throws -> Substring {
        let (_, initial) = try readMessage()
        let clientFirst = String(decoding: initial.drop(while: { $0 != 0 }).dropFirst(5), as: UTF8.self)
        return clientFirst.split(separator: ",").first { $0.hasPrefix("r=") }!.dropFirst(2)
    }
}

/// What a hostile server does after it has read the startup message, and what the probe must make of it.
struct HostileCase: Sendable, CustomTestStringConvertible {
    enum Expected: Sendable {
        /// Not worth retrying; the reason contains every one of these.
        case fatal([String])
        /// Worth retrying (neither ready nor fatal); the reason contains every one of these.
        case retry([String])
        /// Exactly this outcome, given the fake's port.
        case exactly(@Sendable (_ port: Int) -> ProbeOutcome)
    }

    let name: String
    let expected: Expected
    var deadlineMilliseconds = 2000
    /// How long the probe may take to end (nil: not checked).
    var elapsed: Range<Double>? = 0..<1000
    let behaviour: @Sendable (FakeConnection) throws -> Void

    var testDescription: String { name }

    typealias F = PostgresFrames
    static let all: [HostileCase] = [
        HostileCase(name: "garbage bytes", expected: .fatal(["not a PostgreSQL server"])) { c in
            try c.send([0x00, 0x01, 0x02] + Array("garbage\u{7f}".utf8))
        },
        HostileCase(name: "a 2 GiB length prefix", expected: .fatal(["2147483648 bytes, over the 64 MiB limit"])) { c in
            try c.send([UInt8(ascii: "R"), 0x80, 0, 0, 0])
            try c.send([UInt8](repeating: 0x41, count: 65536))  // and some of the promised body
        },
        // A stall is worth retrying.
        HostileCase(name: "half a frame, then a stall", expected: .retry(["before the deadline", "7 of the 13 bytes"]),
                    deadlineMilliseconds: 300, elapsed: 290..<800) { c in
            try c.send(Array(F.authMD5([1, 2, 3, 4]).prefix(7)))
        },
        HostileCase(name: "a silent server", expected: .exactly { .notReady("no answer from 127.0.0.1:\($0) before the deadline") },
                    deadlineMilliseconds: 250, elapsed: 0..<800) { _ in },
        HostileCase(name: "closed mid-frame", expected: .retry(["closed the connection in the middle of a message (7 of the 13 bytes"])) { c in
            try c.send(Array(F.authMD5([1, 2, 3, 4]).prefix(7)))
            c.socket.close()
        },
        HostileCase(name: "closed without a word", expected: .retry(["closed the connection during startup"]), elapsed: nil) { c in
            c.socket.close()
        },
        HostileCase(name: "a TLS-only server", expected: .fatal(["TLS"])) { c in
            try c.send([UInt8(ascii: "S"), 0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03] + [UInt8](repeating: 0xa5, count: 40))
        },
        HostileCase(name: "an HTTP server on the PostgreSQL port",
                    expected: .fatal(["this is an HTTP server, not PostgreSQL (it answered \"HTTP/1.1 400 Bad Request\")"])) { c in
            try c.send("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nBad Request")
            c.socket.close()
        },
        // SCRAM run properly up to the end, then a signature that does not prove the password.
        HostileCase(name: "SCRAM with a wrong server signature", expected: .fatal(["signature is wrong"])) { c in
            try c.send(F.authSASL(["SCRAM-SHA-256"]))
            let nonce = try c.readSCRAMClientNonce()
            try c.send(F.authSASLContinue("r=\(nonce)SERVER,s=\(Base64.encode(Array("salt".utf8))),i=4096"))
            _ = try c.readMessage()
            try c.send(F.authSASLFinal("v=\(Base64.encode([UInt8](repeating: 9, count: 32)))"))
            try c.send(F.authOk())
        },
        HostileCase(name: "SCRAM that skips its signature", expected: .fatal(["without proving it knows the password"]), elapsed: nil) { c in
            try c.send(F.authSASL(["SCRAM-SHA-256"]))
            _ = try c.readMessage()
            try c.send(F.authOk())  // "OK" without any proof
        },
        HostileCase(name: "SCRAM with a huge iteration count", expected: .fatal(["2000000000 iterations"])) { c in
            try c.send(F.authSASL(["SCRAM-SHA-256"]))
            let nonce = try c.readSCRAMClientNonce()
            try c.send(F.authSASLContinue("r=\(nonce)X,s=c2FsdA==,i=2000000000"))
        },
        HostileCase(name: "starting up is not ready yet",
                    expected: .exactly { .notReady("127.0.0.1:\($0): the database system is starting up (SQLSTATE 57P03)") }, elapsed: nil) { c in
            try c.send(F.error([("S", "FATAL"), ("V", "FATAL"), ("C", "57P03"), ("M", "the database system is starting up")]))
            c.socket.close()
        },
    ]
}

@Suite struct PostgresHostileTests {
    /// Runs the probe against a fake that reads the startup message and then misbehaves, and checks how it ended
    /// and how fast.
    @Test(arguments: HostileCase.all)
    func hostileServer(_ hostile: HostileCase) throws {
        let fake = try HostilePostgresFake { c in
            try c.readStartup()
            try hostile.behaviour(c)
        }
        let start = monotonicNanoseconds()
        let outcome = fake.probe.check(deadline: .after(milliseconds: hostile.deadlineMilliseconds))
        let elapsed = millisecondsSince(start)
        #expect(fake.finish(), "the fake's connection ended")
        switch hostile.expected {
        case .fatal(let reasons):
            #expect(outcome.isFatal, "\(outcome)")
            for r in reasons { #expect(outcome.reason.contains(r), "\(outcome)") }
        case .retry(let reasons):
            #expect(!outcome.isReady && !outcome.isFatal, "\(outcome)")
            for r in reasons { #expect(outcome.reason.contains(r), "\(outcome)") }
        case .exactly(let expected):
            #expect(outcome == expected(fake.port))
        }
        if let range = hostile.elapsed { #expect(range.contains(elapsed), "ended after \(elapsed) ms") }
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

    @Test func nothingListening() {
        let port = freePort()
        let probe = PostgresProbe(host: "127.0.0.1", port: port, user: "sage", password: "pw", database: "sage")
        let outcome = probe.check(deadline: .after(seconds: 2))
        #expect(outcome == .notReady("127.0.0.1:\(port): connection refused: nothing listens there (yet)"))
        #expect(probe.target == "postgres://sage:****@127.0.0.1:\(port)/sage")
        #expect(!probe.target.contains("pw"))
    }
}
