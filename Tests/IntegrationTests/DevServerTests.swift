import Testing
import Glibc
import Foundation
import SageSystem

/// Dev servers that do not do what sagedev asks: a Vite-like fixture (about ten lines of Node) that ignores PORT
/// and listens on ::1, and one that honours --host and --port, driven through the real binary.
@Suite struct DevServerTests {
    /// Ignores PORT and HOST, listens on [::1]:<its own port>, as Vite does with "localhost" since Node 17.
    static func viteLike(port: Int) -> String {
        """
        const http = require("node:http");
        // Like Vite: PORT and HOST are not read; "localhost" resolves to ::1.
        const server = http.createServer((req, res) => res.end("vite-like\\n"));
        server.listen(\(port), "::1", () => console.log("  VITE-LIKE ready: http://localhost:\(port)/"));
        process.on("SIGTERM", () => server.close(() => process.exit(0)));

        """
    }

    /// Honours --host and --port (and shows VITE_API_URL), as Vite does when given them.
    static let honouring = """
        const http = require("node:http");
        const arg = (name) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
        const server = http.createServer((req, res) => res.end(`api=${process.env.VITE_API_URL} strict=${process.argv.includes("--strictPort")}\\n`));
        server.listen(Number(arg("--port") || 5173), arg("--host") || "::1", () => console.log("ready"));
        process.on("SIGTERM", () => server.close(() => process.exit(0)));

        """

    static func hasIPv6Loopback() -> Bool { (try? Listener.tcp(host: "::1", port: 0)) != nil }

    @Test func aServerOnIPv6AndItsOwnPortIsNamedWithTheKeyWithinTwoSecondsOfTheFirstRefusal() throws {
        #expect(Self.hasIPv6Loopback(), "this test needs ::1")
        let ownPort = freePort()
        // A directory of its own: nothing in it says which dev server this is (no package.json).
        let p = try TestProject(extraEnv: ["FRONTEND_DIR": "apps/vite-like", "FRONTEND_DEV_COMMAND": "\"node vite-like.js\"",
                                           "FRONTEND_HEALTH_PATH": "/"])
        mkdir(p.root + "/apps/vite-like", 0o755)
        try FileDescriptor.writeFileAtomically(p.root + "/apps/vite-like/vite-like.js", Array(Self.viteLike(port: ownPort).utf8), mode: 0o644)
        let expected = "frontend listens on [::1]:\(ownPort), not 127.0.0.1:\(p.ports.frontend) (FRONTEND_PORT): the dev server ignores PORT and bound ::1; pass --host 127.0.0.1 --port $PORT --strictPort (Vite) or set FRONTEND_PORT=\(ownPort)"
        let upDone = Locked<CompletedProcess?>(nil)
        DispatchQueue.global().async { upDone.withValue { $0 = try? p.sagedev(["up", "--timeout", "20"], timeout: 60) } }
        var firstRefusal: UInt64?
        var named: UInt64?
        var last = ""
        #expect(waitUntil(.after(seconds: 60)) {
            guard let s = try? p.status() else { return false }
            let f = p.service(s, "frontend")
            let health = f["health"] as? [String: Any]
            let reason = health?["reason"] as? String ?? ""
            last = reason
            if firstRefusal == nil, f["state"] as? String == "starting", health?["outcome"] as? String == "not-ready" { firstRefusal = monotonicNanoseconds() }
            if reason == expected { named = monotonicNanoseconds(); return true }
            return false
        }, "last reason: \(last)")
        if let a = firstRefusal, let b = named {
            #expect(Double(b &- a) / 1e9 < 2.0, "named \(Double(b &- a) / 1e9) s after the first refusal")
        }
        // up's failure output says it too (a second up, now that the server listens), and so do status and doctor.
        let second = try p.sagedev(["up", "--timeout", "2"], timeout: 60)
        #expect(second.status == .exited(1))
        #expect(second.stderrText.contains(expected), "\(second.stderrText)")
        #expect(waitUntil(.after(seconds: 60)) { upDone.current != nil })
        #expect(upDone.current?.status == .exited(1))
        #expect(try p.sagedev(["status"]).stdoutText.contains(expected))
        let doctor = try p.sagedev(["doctor"])
        #expect(doctor.stdoutText.contains(expected), "\(doctor.stdoutText)")
    }

    @Test func aDevServerListeningOnNothingSaysSo() throws {
        let p = try TestProject(extraEnv: ["FRONTEND_DEV_COMMAND": "\"exec sleep 60\"", "FRONTEND_HEALTH_PATH": "/",
                                           "FRONTEND_FRAMEWORK": "none"])
        let backend = try p.sagedev(["up", "backend"], timeout: 180)
        #expect(backend.status == .exited(0), "\(backend.stderrText)")
        let up = try p.sagedev(["up", "--timeout", "6"], timeout: 60)
        #expect(up.status == .exited(1))
        #expect(up.stderrText.contains("frontend listens on no TCP port, not 127.0.0.1:\(p.ports.frontend) (FRONTEND_PORT)"), "\(up.stderrText)")
    }

    @Test func withTheViteAdapterAServerHonouringHostAndPortIsHealthy() throws {
        let p = try TestProject(extraEnv: ["FRONTEND_DEV_COMMAND": "\"node vite-ok.js\"", "FRONTEND_HEALTH_PATH": "/",
                                           "FRONTEND_FRAMEWORK": "vite"])
        try FileDescriptor.writeFileAtomically(p.root + "/apps/frontend/vite-ok.js", Array(Self.honouring.utf8), mode: 0o644)
        let up = try p.sagedev(["up", "--timeout", "60"], timeout: 90)
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let r = try Subprocess.run(["curl", "-sS", "--max-time", "2", "http://127.0.0.1:\(p.ports.frontend)/"], deadline: .after(seconds: 5))
        #expect(r.stdoutText == "api=http://127.0.0.1:\(p.ports.backend) strict=true\n")
        let f = p.service(try p.status(), "frontend")
        #expect((f["framework"] as? [String: Any])?["description"] as? String == "Vite (set in .env)")
    }

    @Test func statusSaysWhichDevServerWasDetected() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up"]).status == .exited(0))
        let text = try p.sagedev(["status"]).stdoutText
        #expect(text.contains("frontend: dev server esbuild (auto: the dev command runs esbuild)"), "\(text)")
        let doctor = try p.sagedev(["doctor"]).stdoutText
        #expect(doctor.contains("dev server esbuild (auto: the dev command runs esbuild)"), "\(doctor)")
    }

    @Test func upRefusesAPortHeldOnIPv6Loopback() throws {
        #expect(Self.hasIPv6Loopback(), "this test needs ::1")
        let p = try TestProject()
        let holder = try Listener.tcp(host: "::1", port: p.ports.frontend)
        defer { holder.close() }
        let up = try p.sagedev(["up"], timeout: 60)
        #expect(up.status == .exited(1))
        #expect(up.stderrText.contains("frontend: port \(p.ports.frontend) on ::1 is in use by"), "\(up.stderrText)")
        #expect(up.stderrText.contains("set FRONTEND_PORT in .env"))
    }
}
