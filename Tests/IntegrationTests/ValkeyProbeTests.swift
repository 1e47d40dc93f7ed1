import Foundation
import Testing
import SageSystem
import SageWire
@testable import SageCore

/// The Valkey probe and connection against the real Valkey 8 from the bootstrap toolchain.
@Suite struct ValkeyProbeTests {
    static let password = "vk-Probe-s3cret!"

    @Test func readyWithoutAPassword() throws {
        let v = try TestValkey.make(password: nil)
        try v.waitForReadyLine()
        let outcome = ValkeyProbe(host: "127.0.0.1", port: v.port, password: nil).check(deadline: .after(seconds: 5))
        #expect(outcome == .ready("PONG"))
    }

    @Test func readyWithPasswordAndWithUserAndPassword() throws {
        let v = try TestValkey.make(password: Self.password)
        try v.waitForReadyLine()
        #expect(ValkeyProbe(host: "127.0.0.1", port: v.port, password: Self.password).check(deadline: .after(seconds: 5)) == .ready("PONG"))
        // AUTH user password, with the built-in user.
        #expect(ValkeyProbe(host: "127.0.0.1", port: v.port, user: "default", password: Self.password)
            .check(deadline: .after(seconds: 5)) == .ready("PONG"))
    }

    @Test func wrongPasswordIsFatalWithinOneSecond() throws {
        let v = try TestValkey.make(password: Self.password)
        try v.waitForReadyLine()
        let probe = ValkeyProbe(host: "127.0.0.1", port: v.port, password: "not-the-password")
        let result = ProbeWaiter().wait(for: [probe], deadline: .after(seconds: 30))
        let report = try #require(result.fatal)
        #expect(report.elapsedMilliseconds < 1000, "took \(report.elapsedMilliseconds) ms")
        #expect(report.attempts == 1)
        #expect(report.outcome.reason.contains("WRONGPASS"))
        #expect(report.outcome.reason.contains("VALKEY_PASSWORD in .env"))
        #expect(!report.outcome.reason.contains("not-the-password"))
        #expect(!result.timedOut)
    }

    @Test func wrongUserIsFatalToo() throws {
        let v = try TestValkey.make(password: Self.password)
        try v.waitForReadyLine()
        let outcome = ValkeyProbe(host: "127.0.0.1", port: v.port, user: "nobody", password: Self.password).check(deadline: .after(seconds: 5))
        #expect(outcome.isFatal)
        #expect(outcome.reason.contains("user \"nobody\""))
    }

    @Test func noauthWithoutAConfiguredPasswordIsFatal() throws {
        let v = try TestValkey.make(password: Self.password)
        try v.waitForReadyLine()
        let result = ProbeWaiter().wait(for: [ValkeyProbe(host: "127.0.0.1", port: v.port, password: nil)], deadline: .after(seconds: 30))
        let report = try #require(result.fatal)
        #expect(report.elapsedMilliseconds < 1000)
        #expect(report.outcome.reason.contains("NOAUTH"))
        #expect(report.outcome.reason.contains("set VALKEY_PASSWORD in .env"))
    }

    @Test func passwordForAServerWithoutOneIsFatal() throws {
        let v = try TestValkey.make(password: nil)
        try v.waitForReadyLine()
        let outcome = ValkeyProbe(host: "127.0.0.1", port: v.port, password: Self.password).check(deadline: .after(seconds: 5))
        #expect(outcome.isFatal)
        #expect(outcome.reason.contains("no password set"))
        #expect(!outcome.reason.contains(Self.password))
    }

    @Test func refusedBeforeTheServerStartsIsNotReady() {
        let port = freePort()
        let outcome = ValkeyProbe(host: "127.0.0.1", port: port, password: nil).check(deadline: .after(seconds: 2))
        #expect(outcome == .notReady("valkey 127.0.0.1:\(port): connection refused (not listening yet)"))
    }

    /// The server is started only after the wait has made its first (refused) check; the wait must report
    /// ready within tens of ms of the server's own "Ready to accept connections" log line.
    @Test func serverStartedAfterTheWaitBeganIsDetectedPromptly() throws {
        let v = try TestValkey.make(password: Self.password, start: false)
        let firstCheck = DispatchSemaphore(value: 0)
        let probe = FirstCheckSignal(ValkeyProbe(host: "127.0.0.1", port: v.port, password: Self.password), firstCheck)
        let readyAt = Locked<Double?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let outcome = Locked<ProbeWaitResult?>(nil)
        DispatchQueue(label: "wait").async {
            let r = ProbeWaiter().wait(for: [probe], deadline: .after(seconds: 30)) { report in
                if report.outcome.isReady { readyAt.withValue { $0 = wallClockSeconds() } }
            }
            outcome.withValue { $0 = r }
            finished.signal()
        }
        #expect(firstCheck.wait(timeout: .now() + 10) == .success)
        try v.start()
        #expect(finished.wait(timeout: .now() + 30) == .success)
        let result = try #require(outcome.current)
        #expect(result.allReady)
        #expect(result.reports[0].attempts >= 2)
        let detected = try #require(readyAt.current)
        let logged = try #require(Self.readyLineTime(logPath: v.logPath))
        let lagMs = (detected - logged) * 1000
        print("valkey ready line → probe ready: \(String(format: "%.1f", lagMs)) ms")
        // The log has ms resolution and is written just before the event loop starts serving.
        #expect(lagMs > -5 && lagMs < 100, "detection lag \(lagMs) ms")
    }

    /// `-BUSY` from the real server (a script running past busy-reply-threshold) is "not ready yet".
    @Test func busyServerIsNotReadyUntilTheScriptIsKilled() throws {
        let v = try TestValkey.make(password: Self.password)
        try v.waitForReadyLine()
        let admin = try ValkeyConnection.connect(host: "127.0.0.1", port: v.port, password: Self.password, deadline: .after(seconds: 5))
        #expect(try admin.command(["CONFIG", "SET", "busy-reply-threshold", "50"], deadline: .after(seconds: 5)) == .simpleString("OK"))
        let scriptEnded = DispatchSemaphore(value: 0)
        DispatchQueue(label: "busy-script").async {
            _ = try? v.cli(["EVAL", "while true do end", "0"])
            scriptEnded.signal()
        }
        let probe = ValkeyProbe(host: "127.0.0.1", port: v.port, password: Self.password)
        var last = ProbeOutcome.notReady("not checked")
        let sawBusy = waitUntil(.after(seconds: 10)) {
            last = probe.check(deadline: .after(seconds: 2))
            return last.reason.contains("BUSY")
        }
        #expect(sawBusy, "last outcome: \(last)")
        #expect(!last.isFatal && !last.isReady)
        // SCRIPT KILL is allowed while busy; then the server answers PONG again.
        let killer = try ValkeyConnection.connect(host: "127.0.0.1", port: v.port, password: Self.password, deadline: .after(seconds: 5))
        #expect(try killer.command(["SCRIPT", "KILL"], deadline: .after(seconds: 5)) == .simpleString("OK"))
        #expect(scriptEnded.wait(timeout: .now() + 10) == .success)
        #expect(probe.check(deadline: .after(seconds: 5)) == .ready("PONG"))
    }

    @Test func connectionRunsCommandsThatValkeyCLISees() throws {
        let v = try TestValkey.make(password: Self.password)
        try v.waitForReadyLine()
        let c = try ValkeyConnection.connect(host: "127.0.0.1", port: v.port, password: Self.password, deadline: .after(seconds: 5))
        defer { c.close() }
        #expect(try c.command(["SET", "sagedev:key", "välue\r\n"], deadline: .after(seconds: 5)) == .simpleString("OK"))
        #expect(try v.cli(["--raw", "STRLEN", "sagedev:key"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "8")
        #expect(try c.command(["GET", "sagedev:key"], deadline: .after(seconds: 5)) == .bulkString(Array("välue\r\n".utf8)))
        #expect(try c.command(["GET", "missing"], deadline: .after(seconds: 5)) == .null)
        let info = try c.command(["INFO", "memory"], deadline: .after(seconds: 5))
        #expect(info.string?.contains("used_memory:") == true)
        #expect(try c.command(["FLUSHALL"], deadline: .after(seconds: 5)) == .simpleString("OK"))
        #expect(try v.cli(["DBSIZE"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        let err = try c.command(["NOSUCHCOMMAND"], deadline: .after(seconds: 5))
        #expect(err.errorCode == "ERR")
        // RESP3 over the same connection: HELLO 3 answers with a map.
        let hello = try c.command(["HELLO", "3"], deadline: .after(seconds: 5))
        guard case .map(let pairs) = hello else { Issue.record("HELLO 3 gave \(hello.summary)"); return }
        #expect(pairs.contains { $0.key.string == "proto" && $0.value == .integer(3) })
        #expect(try c.command(["SADD", "s", "a", "b"], deadline: .after(seconds: 5)) == .integer(2))
        guard case .set(let members) = try c.command(["SMEMBERS", "s"], deadline: .after(seconds: 5)) else {
            Issue.record("SMEMBERS under RESP3 is not a set"); return
        }
        #expect(Set(members.compactMap(\.string)) == ["a", "b"])
    }

    @Test func connectWithWrongPasswordThrowsAnAuthenticationError() throws {
        let v = try TestValkey.make(password: Self.password)
        try v.waitForReadyLine()
        let e = #expect(throws: WireError.self) {
            _ = try ValkeyConnection.connect(host: "127.0.0.1", port: v.port, password: "nope", deadline: .after(seconds: 5))
        }
        #expect(e?.code == .authentication)
        #expect(e?.message.contains("VALKEY_PASSWORD") == true)
    }

    /// "1234:M 22 Nov 2026 21:00:00.123 * Ready to accept connections tcp" → seconds since the epoch.
    static func readyLineTime(logPath: String) -> Double? {
        guard let log = FileDescriptor.readText(logPath),
              let line = log.split(separator: "\n").first(where: { $0.contains("Ready to accept connections") }) else { return nil }
        let fields = line.split(separator: " ")
        guard fields.count >= 5 else { return nil }
        let stamp = fields[1...4].joined(separator: " ")
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone.current
        f.dateFormat = "dd MMM yyyy HH:mm:ss.SSS"
        return f.date(from: stamp)?.timeIntervalSince1970
    }
}

/// Wraps a probe and signals after its first check, so a test knows the wait has really begun.
final class FirstCheckSignal: Probe, @unchecked Sendable {
    let inner: any Probe
    let signal: DispatchSemaphore
    private let count = Locked(0)
    init(_ inner: any Probe, _ signal: DispatchSemaphore) { self.inner = inner; self.signal = signal }
    var target: String { inner.target }
    func check(deadline: Deadline) -> ProbeOutcome {
        let outcome = inner.check(deadline: deadline)
        if count.withValue({ c -> Int in c += 1; return c }) == 1 { signal.signal() }
        return outcome
    }
}
