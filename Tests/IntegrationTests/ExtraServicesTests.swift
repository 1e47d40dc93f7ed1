import Testing
import Glibc
import Foundation
import SageSystem

/// Extra services from `.env` (`SAGEDEV_SERVICES`), natively, on the example stack through the real binary: a
/// portless worker that writes a heartbeat row through psql every 200 ms, and an extra HTTP app.
@Suite(.serialized) struct ExtraServicesTests {
    static let fixtures = Repo.root + "/Tests/Fixtures/extra-services"

    /// The example stack plus `worker` (default dependencies: postgres, valkey, the database step) and `hello`
    /// (an HTTP app that depends on the backend).
    func project(_ extra: [String: String] = [:]) throws -> (TestProject, helloPort: Int) {
        let helloPort = freePort()
        var env = [
            "SAGEDEV_SERVICES": "worker,hello",
            "WORKER_DIR": "apps/worker",
            "WORKER_DEV_COMMAND": "\"node worker.js\"",
            "WORKER_PSQL": try Repo.tool("psql"),
            "HELLO_DIR": "apps/hello",
            "HELLO_DEV_COMMAND": "\"node server.js\"",
            "HELLO_PORT": String(helloPort),
            "HELLO_HEALTH_PATH": "/health",
            "HELLO_DEPENDS_ON": "backend",
        ]
        for (k, v) in extra { env[k] = v }
        let p = try TestProject(extraEnv: env)
        let r = try Subprocess.run(["cp", "-R", Self.fixtures + "/worker", Self.fixtures + "/hello", p.root + "/apps/"],
                                   deadline: .after(seconds: 30))
        guard r.status.isSuccess else { throw TestFailure("copy failed: \(r.stderrText)") }
        return (p, helloPort)
    }

    func psql(_ p: TestProject, _ sql: String) throws -> String {
        try Subprocess.run([try Repo.tool("psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", String(p.ports.postgres), "-U", "sage",
                            "-d", "sage", "-c", sql],
                           environment: ["PGPASSWORD": p.postgresPassword, "PATH": "/usr/bin:/bin"], deadline: .after(seconds: 20))
            .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Heartbeat rows, or those written after row `after` (by a worker started since).
    func heartbeats(_ p: TestProject, after: Int = 0) -> Int {
        Int((try? psql(p, "SELECT count(*) FROM worker_heartbeat WHERE id > \(after)")) ?? "") ?? 0
    }

    @Test func everyServiceIsHealthyInGraphOrder() throws {
        let (p, helloPort) = try project()
        let up = try p.sagedev(["up"])
        let out = up.stdoutText
        #expect(up.status == .exited(0), "\(out)\n\(up.stderrText)")
        let status = try p.status()
        for s in ["postgres", "valkey", "backend", "frontend", "worker", "hello"] {
            #expect(p.service(status, s)["state"] as? String == "healthy", "\(s): \(p.service(status, s))")
        }
        // Start order follows the graph: the worker after the database step, hello after the backend is healthy.
        func line(_ text: String) -> String.Index? { out.range(of: text)?.lowerBound }
        let databaseReady = try #require(line("database: ready in"), "\(out)")
        let workerStarting = try #require(line("worker: starting"), "\(out)")
        let backendHealthy = try #require(line("backend: healthy"), "\(out)")
        let helloStarting = try #require(line("hello: starting"), "\(out)")
        #expect(databaseReady < workerStarting, "\(out)")
        #expect(backendHealthy < helloStarting, "\(out)")
        #expect(p.service(status, "worker")["health"].flatMap { ($0 as? [String: Any])?["reason"] as? String }?.contains("process up for") == true,
                "\(p.service(status, "worker"))")

        // The worker writes through the DATABASE_URL it was given; hello was told where the backend is.
        #expect(waitUntil(.after(seconds: 20)) { heartbeats(p) >= 3 }, "no heartbeats; log: \(FileDescriptor.readText(p.root + "/.sagedev/logs/worker.log") ?? "")")
        let body = try Subprocess.run(["curl", "-fsS", "http://127.0.0.1:\(helloPort)/health"], deadline: .after(seconds: 10)).stdoutText
        #expect(body.contains("\"backendURL\":\"http://127.0.0.1:\(p.ports.backend)\""), "\(body)")
        #expect(body.contains("\"hasDatabaseURL\":false"), "\(body)")
        // Each runs in its own process group with its own log and pid file.
        for s in ["worker", "hello"] {
            let rec = try #require(p.pidRecord(s), "\(s) has no pid file")
            #expect(ProcFS.processGroup(pid: rec.pid) == rec.pid)
            #expect(FileDescriptor.exists(p.root + "/.sagedev/logs/\(s).log"))
        }
    }

    @Test func aKilledWorkerIsRestartedWithBackoff() throws {
        let (p, _) = try project()
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stdoutText)\n\(up.stderrText)")
        var gaps: [Double] = []
        for attempt in 1...2 {
            let old = try #require(p.pidRecord("worker")).pid
            let killedAt = monotonicNanoseconds()
            kill(-old, SIGKILL)
            var respawned: Int32?
            #expect(waitUntil(.after(seconds: 30)) {
                guard let r = p.pidRecord("worker"), r.pid != old, ProcFS.isAlive(pid: r.pid, startTime: r.start) else { return false }
                respawned = r.pid
                return true
            }, "attempt \(attempt): the worker was not restarted: \(p.unmet)")
            gaps.append(Double(monotonicNanoseconds() &- killedAt) / 1e9)
            let healthy = p.waitForStatus(.after(seconds: 30)) {
                let w = p.service($0, "worker")
                return w["state"] as? String == "healthy" && w["restarts"] as? Int == attempt
            }
            #expect(healthy != nil, "attempt \(attempt): \(p.unmet)")
            // The old worker's group is gone: rows from now on are the new worker's.
            let last = Int((try? psql(p, "SELECT coalesce(max(id), 0) FROM worker_heartbeat")) ?? "") ?? 0
            #expect(waitUntil(.after(seconds: 20)) { heartbeats(p, after: last) >= 2 }, "the restarted worker \(respawned ?? 0) writes no heartbeat")
        }
        // The first restart waits the initial backoff (0.5 s), the second twice that.
        #expect(gaps[0] >= 0.45, "\(gaps)")
        #expect(gaps[1] >= 0.95, "\(gaps)")
    }

    @Test func anExtraAppIsHotReloadedLikeTheBackend() throws {
        let (p, helloPort) = try project(["HELLO_RELOAD": "restart"])
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stdoutText)\n\(up.stderrText)")
        let before = try #require(p.pidRecord("hello")).pid
        let file = p.root + "/apps/hello/server.js"
        let source = try #require(FileDescriptor.readText(file))
        try FileDescriptor.writeFileAtomically(file, Array((source + "\n// edited\n").utf8), mode: 0o644)
        let reloaded = p.waitForStatus(.after(seconds: 60)) {
            let h = p.service($0, "hello"), r = h["reload"] as? [String: Any]
            return r?["action"] as? String == "restart" && r?["outcome"] as? String == "reloaded" && h["state"] as? String == "healthy"
        }
        #expect(reloaded != nil, "hello was not reloaded: \(p.unmet)")
        #expect((p.service(reloaded ?? [:], "hello")["reload"] as? [String: Any])?["file"] as? String == "apps/hello/server.js")
        #expect(p.pidRecord("hello")?.pid != before, "restart mode starts a new process")
        #expect((try? Subprocess.run(["curl", "-fsS", "http://127.0.0.1:\(helloPort)/health"], deadline: .after(seconds: 10)))?.status == .exited(0))
    }

    @Test func aDependencyCycleExits78NamingBothKeys() throws {
        let (p, _) = try project(["WORKER_DEPENDS_ON": "hello", "HELLO_DEPENDS_ON": "worker"])
        let up = try p.sagedev(["up"], timeout: 60)
        #expect(up.status == .exited(78), "\(up.stdoutText)\n\(up.stderrText)")
        #expect(up.stderrText.contains("WORKER_DEPENDS_ON") && up.stderrText.contains("HELLO_DEPENDS_ON"), "\(up.stderrText)")
        #expect(up.stderrText.contains(".env:"), "the message points at the line: \(up.stderrText)")
        #expect(DaemonLauncherProbe.noDaemon(p), "nothing was started")
    }

    @Test func aContainerServiceUnderTheNativeRuntimeExits78NamingTheKeyAndTheFix() throws {
        let p = try TestProject(extraEnv: ["SAGEDEV_SERVICES": "mailpit", "MAILPIT_KIND": "container", "MAILPIT_IMAGE": "mailpit"])
        let up = try p.sagedev(["up"], timeout: 60)
        #expect(up.status == .exited(78), "\(up.stdoutText)\n\(up.stderrText)")
        #expect(up.stderrText.contains("MAILPIT_KIND") && up.stderrText.contains("SAGEDEV_RUNTIME=compose"), "\(up.stderrText)")
        #expect(DaemonLauncherProbe.noDaemon(p))
    }

    @Test func aContainerServiceWithAutoAndNoDockerEngineExits78() throws {
        let p = try TestProject(runtime: "auto", extraEnv: ["SAGEDEV_SERVICES": "mailpit", "MAILPIT_KIND": "container", "MAILPIT_IMAGE": "mailpit"],
                                processEnvironment: ["DOCKER_HOST": "unix:///nonexistent/docker.sock"])
        let up = try p.sagedev(["up"], timeout: 60)
        #expect(up.status == .exited(78), "\(up.stdoutText)\n\(up.stderrText)")
        #expect(up.stderrText.contains("mailpit is a container service") && up.stderrText.contains("MAILPIT_KIND=app"), "\(up.stderrText)")
        #expect(DaemonLauncherProbe.noDaemon(p))
    }
}

/// Whether a project has no daemon (its control socket does not answer).
enum DaemonLauncherProbe {
    static func noDaemon(_ p: TestProject) -> Bool {
        (try? Socket.connect(unixPath: p.root + "/.sagedev/run/sagedev.sock", deadline: .after(milliseconds: 500))) == nil
    }
}
