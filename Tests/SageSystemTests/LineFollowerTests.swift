import Testing
import Glibc
import Dispatch
@testable import SageSystem

/// What a follower delivered, collected from its queue.
private final class Collected: @unchecked Sendable {
    private let lock = Lock()
    private var lines: [(String, LineFollower.Stream)] = []
    private var exits: [SageSystem.ExitStatus] = []
    func add(_ line: String, _ stream: LineFollower.Stream) { lock.locked { lines.append((line, stream)) } }
    func exited(_ status: SageSystem.ExitStatus) { lock.locked { exits.append(status) } }
    func lines(_ stream: LineFollower.Stream) -> [String] { lock.locked { lines.filter { $0.1 == stream }.map(\.0) } }
    var exitStatuses: [SageSystem.ExitStatus] { lock.locked { exits } }
}

private func follow(_ script: String, _ collected: Collected) throws -> LineFollower {
    try LineFollower.start(["/bin/sh", "-c", script], environment: ["PATH": "/usr/bin:/bin"],
                           onLine: { collected.add($0, $1) }, onExit: { collected.exited($0) })
}

@Suite struct LineFollowerTests {
    @Test func deliversStdoutAndStderrAsLinesThenTheExit() throws {
        let c = Collected()
        let f = try follow("printf 'one\\ntwo\\n'; printf 'oops\\n' >&2; printf 'no newline'; exit 3", c)
        #expect(f.waitForExit(deadline: .after(seconds: 10)))
        #expect(c.lines(.stdout) == ["one", "two", "no newline"])
        #expect(c.lines(.stderr) == ["oops"])
        #expect(c.exitStatuses == [.exited(3)])
        #expect(f.exitStatus == .exited(3))
    }

    @Test func dropsCarriageReturnsAndTerminalControlSequences() throws {
        let c = Collected()
        let f = try follow("printf '\\033[2Kready\\r\\n\\033[1;31mred\\033[0m\\n'", c)
        #expect(f.waitForExit(deadline: .after(seconds: 10)))
        #expect(c.lines(.stdout) == ["ready", "red"])
    }

    @Test func endsWhenTheLeaderExitsEvenIfItsGroupHoldsThePipes() throws {
        // A background member keeps stdout open after the leader is gone; the follower ends the group.
        let c = Collected()
        let f = try follow("tail -f /dev/null & echo started", c)
        #expect(f.waitForExit(deadline: .after(seconds: 10)))
        #expect(c.lines(.stdout) == ["started"])
        #expect(c.exitStatuses == [.exited(0)])
        #expect(ProcFS.waitForGroupToEnd(f.pid, deadline: .after(seconds: 10)))
    }

    @Test func stopEndsALongRunningChildAndRunsOnExitOnce() throws {
        let c = Collected()
        let f = try follow("echo up; exec tail -f /dev/null", c)
        let deadline = Deadline.after(seconds: 10)
        while c.lines(.stdout).isEmpty && !deadline.hasPassed { _ = FileDescriptor.waitReadable(-1, deadline: .after(milliseconds: 5)) }
        #expect(c.lines(.stdout) == ["up"])
        #expect(f.exitStatus == nil)
        f.stop()
        #expect(f.exitStatus == .signalled(SIGTERM))
        #expect(c.exitStatuses == [.signalled(SIGTERM)])
    }

    @Test func aMissingProgramIsNotFound() {
        #expect(throws: SystemError.self) {
            try LineFollower.start(["sagedev-no-such-program"], environment: ["PATH": "/usr/bin:/bin"],
                                   onLine: { _, _ in }, onExit: { _ in })
        }
    }
}
