import Testing
import Glibc
@testable import SageSystem

@Suite struct SubprocessTests {
    @Test func capturesOutputAndStatus() throws {
        let r = try Subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 3"], deadline: .after(seconds: 10))
        #expect(r.status == .exited(3))
        #expect(r.stdoutText == "out\n")
        #expect(r.stderrText == "err\n")
    }

    @Test func feedsStdin() throws {
        let r = try Subprocess.run(["cat"], input: Array("hello".utf8), deadline: .after(seconds: 10))
        #expect(r.stdoutText == "hello")
    }

    @Test func deadlineKillsTheGroup() throws {
        let start = monotonicNanoseconds()
        #expect { try Subprocess.run(["sh", "-c", "sleep 30 & sleep 30"], deadline: .after(milliseconds: 300)) } throws: {
            ($0 as? SystemError)?.code == .timedOut
        }
        #expect(millisecondsSince(start) < 5000)
    }

    @Test func missingCommandIsNotFound() {
        #expect { try Subprocess.run(["no-such-command-xyz"], deadline: .after(seconds: 5)) } throws: {
            ($0 as? SystemError)?.code == .notFound
        }
    }

    @Test func pidfdReportsExitAndTeardownEscalates() throws {
        // A child that ignores SIGTERM must still end through the teardown's SIGKILL step.
        let child = try Spawner.spawn(SpawnSpec(executable: "/bin/sh", arguments: ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
                                                environment: ["PATH": "/usr/bin:/bin"], stdout: .pipe))
        let fd = child.takeStdout()!
        defer { close(fd) }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 5000) == 1)  // the trap is installed once "ready" is printed
        #expect(child.tryWait() == nil)
        let status = child.terminate(Teardown([.init(signal: SIGTERM, graceMilliseconds: 200), .init(signal: SIGKILL, graceMilliseconds: 5000)]))
        #expect(status == .signalled(SIGKILL))
        #expect(kill(child.pid, 0) != 0)
    }

    @Test func childGetsOwnProcessGroupAndNoInheritedFds() throws {
        let listener = try Listener.tcp(port: 0)  // an fd above 2 that must not leak into the child
        let r = try Subprocess.run(["sh", "-c", "echo $$; cut -d' ' -f5 /proc/$$/stat; ls /proc/$$/fd"], deadline: .after(seconds: 10))
        let lines = r.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines[0] == lines[1])  // pid == pgid: its own group
        #expect(Set(lines.dropFirst(2)) == ["0", "1", "2"])
        #expect(listener.fd > 2)
    }
}
