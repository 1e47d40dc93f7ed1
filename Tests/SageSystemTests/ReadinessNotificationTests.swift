import Testing
import Glibc
@testable import SageSystem

private func spawnShell(_ script: String, stdin: Redirect = .null) throws -> ChildProcess {
    try Spawner.spawn(SpawnSpec(executable: "/bin/sh", arguments: ["/bin/sh", "-c", script],
                                environment: ["PATH": "/usr/bin:/bin", ReadinessNotification.variable: "3"],
                                stdin: stdin, stdout: .null, stderr: .null, notificationPipe: true))
}

@Suite struct ReadinessNotificationTests {
    @Test func aChildThatWritesItsLineIsReady() throws {
        let child = try spawnShell("echo ready >&$SAGEDEV_NOTIFY_FD")
        let fd = try #require(child.notificationFD)
        #expect(ReadinessNotification.wait(fd, deadline: .after(seconds: 10)))
        #expect(child.wait(deadline: .after(seconds: 10)) == .exited(0))
    }

    @Test func aChildThatExitsWithoutAWordEndsTheWaitAtOnce() throws {
        let child = try spawnShell("exit 3")
        let fd = try #require(child.notificationFD)
        let deadline = Deadline.after(seconds: 60)
        #expect(!ReadinessNotification.wait(fd, deadline: deadline))
        #expect(!deadline.hasPassed, "the wait ran to its deadline instead of ending with the pipe")
        #expect(child.wait(deadline: .after(seconds: 10)) == .exited(3))
    }

    @Test func aChildThatSaysNothingIsNotReadyAtTheDeadline() throws {
        // cat waits on its stdin pipe, which this test holds open.
        let child = try spawnShell("exec cat", stdin: .pipe)
        defer { child.signal(SIGKILL); _ = child.wait(deadline: .after(seconds: 10)) }
        let fd = try #require(child.notificationFD)
        #expect(!ReadinessNotification.wait(fd, deadline: .after(milliseconds: 100)))
    }

    @Test func otherChildrenGetNoNotificationFD() throws {
        let child = try Spawner.spawn(SpawnSpec(executable: "/bin/sh", arguments: ["/bin/sh", "-c", "[ ! -e /proc/self/fd/3 ]"],
                                                environment: ["PATH": "/usr/bin:/bin"], stdout: .null, stderr: .null))
        #expect(child.notificationFD == nil)
        #expect(child.wait(deadline: .after(seconds: 10)) == .exited(0))
    }

    @Test func takingTheFDRemovesTheVariable() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var env = ["A": "1", ReadinessNotification.variable: String(fds[1])]
        let fd = ReadinessNotification.take(from: &env)
        #expect(fd == fds[1])
        #expect(env == ["A": "1"])
        ReadinessNotification.signal(fds[1])
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress!, $0.count) }
        #expect(Array(buffer[0..<max(0, n)]) == Array("ready\n".utf8))
        var none = ["A": "1"]
        #expect(ReadinessNotification.take(from: &none) == nil)
    }
}
