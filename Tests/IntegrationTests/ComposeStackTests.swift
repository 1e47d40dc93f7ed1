import Testing
import Glibc
import Foundation
import SageSystem

/// The compose runtime end to end through the real `sagedev` binary: the example stack in a temporary directory,
/// a private Docker engine (Support/DockerEngine.swift) with the locally built sagedev-test/* images named in `.env`,
/// real Docker Compose v2, and real clients (psql, valkey-cli, curl, docker) checking the outcome.
@Suite(.serialized) struct ComposeStackTests {
    static let images = [
        "POSTGRES_IMAGE": "sagedev-test/postgres:18", "VALKEY_IMAGE": "sagedev-test/valkey:8",
        "BACKEND_IMAGE": "sagedev-test/node:20", "FRONTEND_IMAGE": "sagedev-test/node:20",
    ]
    static let services = ["postgres", "valkey", "backend", "frontend"]

    /// A compose project of its own (the engine is shared by every test of this process): the name is unique.
    static func project(_ engine: DockerEngine.Engine, extraEnv: [String: String] = [:],
                        processEnvironment: [String: String]? = nil) throws -> TestProject {
        let name = "sgs" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        // A later assignment wins in .env (Compose's rule): this replaces TestProject's fixed project name.
        var env = images.merging(extraEnv) { $1 }
        env["SAGEDEV_PROJECT"] = name
        return try TestProject(runtime: "compose", backend: .typescript, extraEnv: env,
                               processEnvironment: processEnvironment ?? ["DOCKER_HOST": engine.host])
    }

    static func composeName(_ p: TestProject) -> String {
        (FileDescriptor.readText(p.root + "/.env") ?? "").split(separator: "\n")
            .last { $0.hasPrefix("SAGEDEV_PROJECT=") }.map { String($0.dropFirst("SAGEDEV_PROJECT=".count)) } ?? ""
    }

    static func docker(_ engine: DockerEngine.Engine, _ args: [String]) throws -> CompletedProcess {
        try Subprocess.run(["docker"] + args, environment: engine.environment, deadline: .after(seconds: 60))
    }

    static func psql(_ p: TestProject, _ sql: String) throws -> CompletedProcess {
        var env = ProcessEnvironment.current()
        env["PGPASSWORD"] = p.postgresPassword
        env["PGCONNECT_TIMEOUT"] = "5"
        return try Subprocess.run([try Repo.tool("psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                   "-p", String(p.ports.postgres), "-U", "sage", "-d", "sage", "-c", sql],
                                  environment: env, deadline: .after(seconds: 30))
    }

    static func valkeyCLI(_ p: TestProject, _ args: [String], password: String?) throws -> CompletedProcess {
        var env = ProcessEnvironment.current()
        if let password { env["REDISCLI_AUTH"] = password } else { env.removeValue(forKey: "REDISCLI_AUTH") }
        return try Subprocess.run([try Repo.tool("valkey-cli"), "-h", "127.0.0.1", "-p", String(p.ports.valkey)] + args,
                                  environment: env, deadline: .after(seconds: 10))
    }

    static func health(_ port: Int) -> String? {
        guard let r = try? Subprocess.run(["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:\(port)/health"],
                                          deadline: .after(seconds: 5)), r.status.isSuccess else { return nil }
        return r.stdoutText
    }

    static func page(_ port: Int) -> String? {
        guard let r = try? Subprocess.run(["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:\(port)/"],
                                          deadline: .after(seconds: 5)), r.status.isSuccess else { return nil }
        return r.stdoutText
    }

    static func states(_ p: TestProject, _ s: [String: Any]) -> String {
        services.map { name in
            let o = p.service(s, name)
            return "\(name) \(o["state"] ?? "?") (\(o["reason"] ?? ""); restarts \(o["restarts"] ?? "?"))"
        }.joined(separator: ", ")
    }

    static func allHealthy(_ p: TestProject, _ s: [String: Any]) -> Bool {
        services.allSatisfy { p.service(s, $0)["state"] as? String == "healthy" }
    }

    /// The `logs -f` and `events` children the daemon recorded (pid, start time) and which of them still run.
    static func liveFollowers(_ p: TestProject) -> [Int32] {
        (FileDescriptor.readText(p.root + "/.sagedev/run/compose-followers") ?? "").split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count >= 2, let pid = Int32(f[0]), let start = UInt64(f[1]),
                  ProcFS.isAlive(pid: pid, startTime: start) else { return nil }
            return pid
        }
    }

    /// The containers of the project, running or not: `docker ps -a` by the Compose project label.
    static func containers(_ engine: DockerEngine.Engine, _ name: String) throws -> [String] {
        try docker(engine, ["ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project=\(name)"])
            .stdoutText.split(separator: "\n").map(String.init)
    }

    static func volumes(_ engine: DockerEngine.Engine, _ name: String) throws -> [String] {
        try docker(engine, ["volume", "ls", "-q", "--filter", "label=com.docker.compose.project=\(name)"])
            .stdoutText.split(separator: "\n").map(String.init)
    }

    // MARK: one stack, the whole life cycle

    @Test func upClientsReloadCrashResetAdoptionAndDown() throws {
        let engine = try DockerEngine.shared()
        let p = try Self.project(engine)
        let name = Self.composeName(p)

        // Bring-up: all four healthy, each a container of this Compose project.
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stdoutText)\n\(up.stderrText)")
        #expect(up.stdoutText.contains("(runtime compose)"))
        #expect(!up.stdoutText.contains(p.postgresPassword) && !up.stderrText.contains(p.postgresPassword))
        // tsc --watch's first build rewrites dist/ just after up, and node --watch restarts the backend once on it:
        // wait for that restart to be over before the checks.
        let status = try p.waitForStatus(.after(seconds: 60)) { Self.allHealthy(p, $0) } ?? p.status()
        #expect(Self.allHealthy(p, status), "\(status)")
        #expect(status["runtime"] as? String == "compose")
        #expect(status["runtimeReason"] as? String == "SAGEDEV_RUNTIME=compose")
        var ids: [String: String] = [:]
        for s in Self.services {
            let o = p.service(status, s)
            let d = o["details"] as? [String: String] ?? [:]
            #expect(o["container"] as? String == "\(name)-\(s)-1", "\(s): \(o)")
            #expect((o["containerId"] as? String)?.count == 64, "\(s): \(o)")
            #expect((o["pid"] as? Int ?? 0) > 1, "\(s): the container's main process on the host")
            #expect(d["runtime"] == "compose" && d["state"] == "running", "\(s): \(d)")
            #expect(d["container"] == "\(name)-\(s)-1")
            #expect(d["containerId"].map { (o["containerId"] as? String)?.hasPrefix($0) == true } == true, "\(d)")
            let port = s == "postgres" ? p.ports.postgres : s == "valkey" ? p.ports.valkey : s == "backend" ? p.ports.backend : p.ports.frontend
            #expect(d["ports"]?.contains("127.0.0.1:\(port)->") == true, "\(s): \(d)")
            ids[s] = o["containerId"] as? String
        }
        #expect(try Self.containers(engine, name).count == 4)

        // Real clients from the host, on the published ports, with the .env credentials.
        #expect(try Self.psql(p, "SELECT count(*) FROM users").stdoutText == "3\n", "the seeds ran")
        #expect(try Self.psql(p, "SHOW server_version_num").stdoutText.hasPrefix("18"))
        #expect(try Self.valkeyCLI(p, ["ping"], password: p.valkeyPassword).stdoutText == "PONG\n")
        #expect(try Self.valkeyCLI(p, ["set", "compose-key", "kept"], password: p.valkeyPassword).stdoutText == "OK\n")
        #expect(try Self.valkeyCLI(p, ["get", "compose-key"], password: nil).stdoutText.contains("NOAUTH"))
        // (The restart on tsc's first pass can begin just after status showed all healthy: the backend answers
        // again within seconds.)
        #expect(waitUntil(.after(seconds: 30)) { Self.health(p.ports.backend)?.contains("\"version\":\"1.0.0\"") == true },
                "\(Self.health(p.ports.backend) ?? "no answer")")
        #expect(Self.page(p.ports.frontend)?.contains("<title>Sage</title>") == true)
        // The real app through the published port: seeded chats from Postgres, cached in Valkey.
        let chats = try Subprocess.run(["curl", "-fsS", "--max-time", "5", "-D", "-", "http://127.0.0.1:\(p.ports.backend)/api/chats?user=1"],
                                       deadline: .after(seconds: 10))
        #expect(chats.stdoutText.contains("Analytical engine notes"), "\(chats.stdoutText)\(chats.stderrText)")
        #expect(chats.stdoutText.lowercased().contains("x-cache: miss"))

        // Hot reload: the edit reaches the container through the bind mount; status confirms the reload.
        let versionFile = p.root + "/apps/backend/src/version.ts"
        let edit = "export const VERSION: string = \"2.0.0-compose\";\n"
        let fd = open(versionFile, O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        FileDescriptor.writeAll(fd, edit)
        close(fd)
        let reloaded = p.waitForStatus(.after(seconds: 90)) {
            let b = p.service($0, "backend")
            let r = b["reload"] as? [String: Any]
            return b["state"] as? String == "healthy" && r?["outcome"] as? String == "reloaded" && r?["healthyMs"] != nil
        }
        #expect(reloaded != nil, "status never showed the backend reloaded: \(p.unmet)")
        let record = p.service(reloaded ?? [:], "backend")["reload"] as? [String: Any]
        #expect(record?["file"] as? String == "apps/backend/src/version.ts")
        #expect(record?["count"] as? Int == 1)
        #expect(waitUntil(.after(seconds: 10)) { Self.health(p.ports.backend)?.contains("2.0.0-compose") == true },
                "/health: \(Self.health(p.ports.backend) ?? "no answer")")

        // A crash of the postgres container's main process: detected, restarted, committed data intact.
        #expect(try Self.psql(p, "CREATE TABLE crash_probe(n int); INSERT INTO crash_probe SELECT generate_series(1, 1000)").status == .exited(0))
        let pgPid = Int32(p.service(try p.status(), "postgres")["pid"] as? Int ?? 0)
        #expect(pgPid > 1 && kill(pgPid, SIGKILL) == 0)
        let recovered = p.waitForStatus(.after(seconds: 60)) {
            let s = p.service($0, "postgres")
            return s["state"] as? String == "healthy" && s["restarts"] as? Int == 1
        }
        #expect(recovered != nil, "postgres did not come back after SIGKILL of pid \(pgPid): \(p.unmet)")
        let pgAfter = p.service(recovered ?? [:], "postgres")
        #expect((pgAfter["lastExit"] as? [String: Any])?["signal"] as? Int == Int(SIGKILL), "\(pgAfter)")
        #expect(pgAfter["pid"] as? Int != Int(pgPid))
        #expect(try Self.psql(p, "SELECT count(*) FROM crash_probe").stdoutText == "1000\n")

        // reset-db: the backend stops and starts through Compose; rows added since are gone, the seeds are back.
        #expect(try Self.psql(p, "INSERT INTO users (email, name) VALUES ('extra@example.com', 'Extra')").status == .exited(0))
        let reset = try p.sagedev(["reset-db", "--yes"], timeout: 120)
        #expect(reset.status == .exited(0), "\(reset.stdoutText)\n\(reset.stderrText)")
        #expect(try Self.psql(p, "SELECT count(*) FROM users").stdoutText == "3\n")
        #expect(try Self.psql(p, "SELECT count(*) FROM users WHERE email = 'extra@example.com'").stdoutText == "0\n")
        #expect(try Self.psql(p, "SELECT to_regclass('crash_probe') IS NULL").stdoutText == "t\n")
        // (A liveness probe of the backend sent during the postgres outage above may still be on its 2 s deadline.)
        let afterReset = try p.waitForStatus(.after(seconds: 10)) { Self.allHealthy(p, $0) } ?? p.status()
        #expect(Self.allHealthy(p, afterReset), "after reset-db: \(Self.states(p, afterReset))\n\(reset.stdoutText)")
        #expect(p.service(afterReset, "backend")["restarts"] as? Int == 0, "the backend was restarted: \(Self.states(p, afterReset))")

        // A backup runs pg_dump inside the postgres container (docker compose exec), and restores through psql
        // there: a row added after the backup is gone once it is restored.
        let backup = try p.sagedev(["db", "backup"], timeout: 60)
        #expect(backup.status == .exited(0), "\(backup.stdoutText)\n\(backup.stderrText)")
        let backupFile = try #require(FileManager.default.contentsOfDirectory(atPath: p.root + "/.sagedev/backups").first { $0.hasSuffix(".sql.gz") })
        #expect(try Self.psql(p, "INSERT INTO users (email, name) VALUES ('after-backup@example.com', 'After')").status == .exited(0))
        let restored = try p.sagedev(["db", "restore-backup", backupFile, "--yes"], timeout: 120)
        #expect(restored.status == .exited(0), "\(restored.stdoutText)\n\(restored.stderrText)")
        #expect(try Self.psql(p, "SELECT count(*) FROM users WHERE email = 'after-backup@example.com'").stdoutText == "0\n")
        #expect(try Self.psql(p, "SELECT count(*) FROM users").stdoutText == "3\n")

        // The daemon is killed: the next `up` adopts the running containers (none restarted) and ends the old
        // daemon's `logs -f` and `events` children.
        #expect(try Self.psql(p, "CREATE TABLE kept(v text); INSERT INTO kept VALUES ('still here')").status == .exited(0))
        let before = try p.status()
        let beforeIDs = Self.services.map { p.service(before, $0)["containerId"] as? String }
        let daemonPid = Int32((before["daemon"] as? [String: Any])?["pid"] as? Int ?? 0)
        let oldFollowers = Self.liveFollowers(p)
        #expect(oldFollowers.count >= 5, "events and four logs -f: \(oldFollowers)")
        #expect(daemonPid > 0 && kill(daemonPid, SIGKILL) == 0)
        #expect(waitUntil(.after(seconds: 10)) { !ProcFS.isAlive(pid: daemonPid, startTime: nil) })
        let again = try p.sagedev(["up"])
        #expect(again.status == .exited(0), "\(again.stdoutText)\n\(again.stderrText)")
        let adopted = try p.status()
        #expect(Self.allHealthy(p, adopted), "\(adopted)")
        #expect(Self.services.map { p.service(adopted, $0)["containerId"] as? String } == beforeIDs,
                "containers were recreated instead of adopted")
        #expect(Self.services.allSatisfy { p.service(adopted, $0)["restarts"] as? Int == 0 })
        #expect(oldFollowers.allSatisfy { !Self.liveFollowers(p).contains($0) }, "the old daemon's children still run")

        // down: the containers go, the named volumes stay, no child of the daemon is left.
        let anonymous = try Self.docker(engine, ["inspect", "--format", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}", "\(name)-backend-1"])
            .stdoutText.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty && !$0.hasPrefix(name + "_") }
        #expect(anonymous.count == 1, "the backend's node_modules volume: \(anonymous)")
        let down = try p.sagedev(["down"], timeout: 120)
        #expect(down.status == .exited(0), "\(down.stdoutText)\n\(down.stderrText)\n\((FileDescriptor.readText(p.root + "/.sagedev/logs/daemon.log") ?? "").suffix(4000))")
        #expect(try Self.containers(engine, name).isEmpty)
        let kept = try Self.volumes(engine, name)
        #expect(kept.contains("\(name)_postgres-data") && kept.contains("\(name)_valkey-data"), "\(kept)")
        for v in anonymous {
            #expect(try Self.docker(engine, ["volume", "inspect", v]).status != .exited(0), "anonymous volume \(v) left behind")
        }
        #expect(Self.liveFollowers(p).isEmpty, "children left after down: \(Self.liveFollowers(p))")
        #expect(try p.sagedev(["status"]).status == .exited(3))
        for port in [p.ports.postgres, p.ports.valkey, p.ports.backend, p.ports.frontend] {
            #expect(PortCheck.check(host: "127.0.0.1", port: port) == nil, "port \(port) still taken")
        }

        // The data survived `down`; `down --volumes --yes` removes it.
        let third = try p.sagedev(["up", "postgres"])
        #expect(third.status == .exited(0), "\(third.stderrText)")
        #expect(try Self.psql(p, "SELECT v FROM kept").stdoutText == "still here\n")
        let wipe = try p.sagedev(["down", "--volumes", "--yes"], timeout: 120)
        #expect(wipe.status == .exited(0), "\(wipe.stdoutText)\n\(wipe.stderrText)")
        #expect(try Self.containers(engine, name).isEmpty)
        #expect(try Self.volumes(engine, name).isEmpty)
    }

    // MARK: bad setups: a clear error and exit 1, quickly, never a hang

    @Test func anUnreachableEngineFailsQuicklyNamingIt() throws {
        let engine = try DockerEngine.shared()
        let dead = makeTempDirectory("sagedev-dead-engine")
        defer { removeTree(dead) }
        // A socket file nobody accepts on: connect() is refused.
        let listener = try Listener.unix(path: dead + "/docker.sock")
        listener.close()
        let host = "unix://\(dead)/docker.sock"
        let p = try Self.project(engine, processEnvironment: ["DOCKER_HOST": host])
        let t0 = monotonicNanoseconds()
        let r = try p.sagedev(["up"], timeout: 60)
        let ms = millisecondsSince(t0)
        #expect(r.status == .exited(1), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(r.stderrText.contains("no Docker engine answers at \(host)"), "\(r.stderrText)")
        #expect(r.stderrText.contains("SAGEDEV_RUNTIME=native"))
        #expect(ms < 15_000, "took \(ms) ms")
        #expect(try p.sagedev(["status"]).status == .exited(3))
    }

    @Test func aMissingImageIsNamedWithItsEnvKey() throws {
        let engine = try DockerEngine.shared()
        let p = try Self.project(engine, extraEnv: ["POSTGRES_IMAGE": "sagedev-test/no-such-postgres:0"])
        let t0 = monotonicNanoseconds()
        let r = try p.sagedev(["up"], timeout: 120)
        let ms = millisecondsSince(t0)
        #expect(r.status == .exited(1), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(r.stderrText.contains("image sagedev-test/no-such-postgres:0"), "\(r.stderrText)")
        #expect(r.stderrText.contains("set POSTGRES_IMAGE in .env"))
        #expect(ms < 60_000, "took \(ms) ms")
        #expect(try Self.containers(engine, Self.composeName(p)).isEmpty)
    }

    @Test func aTakenPublishedPortIsNamed() throws {
        let engine = try DockerEngine.shared()
        let p = try Self.project(engine)
        let holder = try Listener.tcp(host: "127.0.0.1", port: p.ports.postgres)
        defer { holder.close() }
        let t0 = monotonicNanoseconds()
        let r = try p.sagedev(["up"], timeout: 60)
        let ms = millisecondsSince(t0)
        #expect(r.status == .exited(1), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(r.stderrText.contains("port \(p.ports.postgres)"), "\(r.stderrText)")
        #expect(r.stderrText.contains("POSTGRES_PORT"))
        #expect(ms < 15_000, "took \(ms) ms")
        #expect(try Self.containers(engine, Self.composeName(p)).isEmpty, "nothing was started")
    }
}
