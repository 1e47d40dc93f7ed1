import Testing
import Foundation
import Glibc
import SageSystem

/// `status --watch` in a real terminal: tmux runs it in a 120x30 pane, and capture-pane reads the screen.
@Suite struct StatusWatchTests {
    func tmux(_ args: [String]) throws -> CompletedProcess {
        try Subprocess.run(["tmux"] + args, deadline: .after(seconds: 10))
    }

    @Test func theLiveViewFollowsACrashAndQuitsCleanly() throws {
        let p = try TestProject()
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let session = "sagedev-watch-\(getpid())-\(p.ports.backend)"
        #expect(try tmux(["new-session", "-d", "-s", session, "-x", "120", "-y", "30", "sh"]).status == .exited(0))
        defer { _ = try? tmux(["kill-session", "-t", session]) }
        var screen = ""
        func capture() -> String { (try? tmux(["capture-pane", "-p", "-t", session]).stdoutText) ?? "" }
        func row(_ service: String) -> String {
            screen.split(separator: "\n").first { $0.dropFirst(2).hasPrefix(service + " ") }.map(String.init) ?? ""
        }
        _ = try tmux(["send-keys", "-t", session, "cd '\(p.root)' && NO_COLOR=1 '\(SagedevBinary.path)' status --watch", "Enter"])
        let allRows = waitUntil(.after(seconds: 30)) {
            screen = capture()
            return ["postgres", "valkey", "backend", "frontend"].allSatisfy { row($0).contains("healthy") }
        }
        #expect(allRows, "\(screen)")
        #expect(screen.contains("connections in use"))

        // kill -9 of the backend: the pane shows it crashed, then healthy again, with no key pressed.
        let pid = try #require(p.pidRecord("backend")).pid
        kill(-pid, SIGKILL)
        let crashed = waitUntil(.after(seconds: 30)) { screen = capture(); return screen.contains("backend crashed") }
        #expect(crashed, "\(screen)")
        let healthyAgain = waitUntil(.after(seconds: 60)) {
            screen = capture()
            return row("backend").contains("healthy") && row("backend").contains(" 1 ")
        }
        #expect(healthyAgain, "\(screen)")

        // q quits, restores the terminal and gives the prompt back.
        _ = try tmux(["send-keys", "-t", session, "q"])
        // The next keys go to the shell only once the view is gone (sent at once, the view may read them with the q).
        let gone = waitUntil(.after(seconds: 20)) { screen = capture(); return !screen.contains("healthy") }
        #expect(gone, "the view did not quit on q: \(screen)")
        _ = try tmux(["send-keys", "-t", session, "echo watch-exit=$?", "Enter"])
        let back = waitUntil(.after(seconds: 20)) { screen = capture(); return screen.contains("watch-exit=0") }
        #expect(back, "\(screen)")
        for secret in [p.postgresPassword, p.valkeyPassword, "pg-pass%3Bwith"] { #expect(!screen.contains(secret)) }
    }

    @Test func withoutATerminalItRefusesNamingStatusJSON() throws {
        let p = try TestProject()
        let r = try p.sagedev(["status", "--watch"])
        #expect(r.status == .exited(64))
        #expect(r.stderrText.contains("status --json"))
    }
}
