import Testing
import Glibc
import Foundation
import SageSystem

/// Extra services under the compose runtime, on the private Docker engine, through the real binary: the worker as
/// an app service (its dev image built from the local node image) and a container service from a busybox image
/// this test imports, with a tcp health check.
@Suite(.serialized) struct ComposeExtraServicesTests {
    static let webImage = "sagedev-test/busybox-web:1"

    /// A busybox root filesystem with a page to serve, imported as an image (no registry).
    static func buildWebImage(_ engine: DockerEngine.Engine) throws {
        let root = makeTempDirectory("sagedev-web")
        defer { removeTree(root) }
        for dir in ["/bin", "/www", "/tmp"] { mkdir(root + dir, 0o755) }
        let busybox = ProcessEnvironment.current()["SAGEDEV_TEST_BUSYBOX"] ?? "/bin/busybox"
        let cp = try Subprocess.run(["cp", "-L", busybox, root + "/bin/busybox"], deadline: .after(seconds: 30))
        guard cp.status.isSuccess else { throw TestFailure("cp busybox: \(cp.stderrText)") }
        for applet in ["sh", "nc", "httpd", "wget"] { symlink("busybox", root + "/bin/" + applet) }
        try FileDescriptor.writeFileAtomically(root + "/www/index.html", Array("hello from the web container\n".utf8), mode: 0o644)
        let script = "tar -C '\(root)' --owner=0 --group=0 --numeric-owner -cf - . | docker import - '\(webImage)'"
        let r = try Subprocess.run(["bash", "-c", script], environment: engine.environment, deadline: .after(seconds: 120))
        guard r.status.isSuccess else { throw TestFailure("docker import: \(r.stderrText)") }
    }

    @Test func theWorkerAsAnAppAndAContainerServiceAreHealthy() throws {
        let engine = try DockerEngine.shared()
        try Self.buildWebImage(engine)
        let webPort = freePort()
        let p = try ComposeStackTests.project(engine, extraEnv: [
            "SAGEDEV_SERVICES": "worker,web",
            "WORKER_DIR": "apps/worker",
            "WORKER_DEV_COMMAND": "\"node worker.js\"",
            "WORKER_IMAGE": "sagedev-test/node:20",
            "WORKER_HEARTBEAT": "valkey",
            "WEB_KIND": "container",
            "WEB_IMAGE": Self.webImage,
            "WEB_COMMAND": "\"/bin/busybox httpd -f -p 8080 -h /www\"",
            "WEB_PORT": String(webPort),
            "WEB_CONTAINER_PORT": "8080",
            "WEB_HEALTH": "tcp",
        ])
        let cp = try Subprocess.run(["cp", "-R", ExtraServicesTests.fixtures + "/worker", p.root + "/apps/"], deadline: .after(seconds: 30))
        #expect(cp.status.isSuccess)
        let name = ComposeStackTests.composeName(p)

        let up = try p.sagedev(["up"], timeout: 600)
        #expect(up.status == .exited(0), "\(up.stdoutText)\n\(up.stderrText)")
        // (The backend's first tsc --watch pass may restart it once just after up, as in ComposeStackTests.)
        let all = ComposeStackTests.services + ["worker", "web"]
        let status = try p.waitForStatus(.after(seconds: 60)) { st in all.allSatisfy { p.service(st, $0)["state"] as? String == "healthy" } } ?? p.status()
        for s in ComposeStackTests.services + ["worker", "web"] {
            #expect(p.service(status, s)["state"] as? String == "healthy", "\(s): \(p.service(status, s))")
        }
        for s in ["worker", "web"] {
            #expect(p.service(status, s)["container"] as? String == "\(name)-\(s)-1", "\(s): \(p.service(status, s))")
        }

        // The worker reached valkey by its service name, through the VALKEY_URL it was given.
        func beats() -> Int {
            Int((try? ComposeStackTests.valkeyCLI(p, ["get", "worker:heartbeats"], password: p.valkeyPassword))?
                .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        }
        let first = beats()
        #expect(waitUntil(.after(seconds: 30)) { beats() >= first + 3 },
                "no heartbeats: \(FileDescriptor.readText(p.root + "/.sagedev/logs/worker.log") ?? "")")

        // The container answers on its published port, and its compose healthcheck (tcp) passes.
        let page = try Subprocess.run(["curl", "-fsS", "--max-time", "3", "http://127.0.0.1:\(webPort)/"], deadline: .after(seconds: 10))
        #expect(page.stdoutText == "hello from the web container\n", "\(page.stdoutText) \(page.stderrText)")
        var health = ""
        #expect(waitUntil(.after(seconds: 60)) {
            health = (try? ComposeStackTests.docker(engine, ["inspect", "--format", "{{.State.Health.Status}}", "\(name)-web-1"]))?
                .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return health == "healthy"
        }, "compose health of web: \(health)")

        let down = try p.sagedev(["down"], timeout: 180)
        #expect(down.status == .exited(0), "\(down.stdoutText)\n\(down.stderrText)\ndaemon log: \((FileDescriptor.readText(p.root + "/.sagedev/logs/daemon.log") ?? "").suffix(3000))")
        #expect(try ComposeStackTests.containers(engine, name).isEmpty)
    }
}
