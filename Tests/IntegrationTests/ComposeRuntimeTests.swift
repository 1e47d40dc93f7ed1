import Testing
import Glibc
import SageSystem
@testable import SageCore

/// The compose runtime against a real Docker engine (a private dockerd, see Support/DockerEngine.swift) and real
/// Docker Compose v2, with locally built images standing in for the official ones (scripts/build-test-images.sh).
/// The compose file is the one `ComposeFile.generate` makes; `.env` points the image settings at sagedev-test/*.
@Suite(.serialized) struct ComposeRuntimeTests {
    static let postgresImage = "sagedev-test/postgres:18"
    static let valkeyImage = "sagedev-test/valkey:8"
    static let nodeImage = "sagedev-test/node:20"

    /// One compose project in a temporary directory, on free ports, with its own runtime.
    final class Project: @unchecked Sendable {
        let directory: String
        let config: Config
        let environment: [String: String]
        let logs: LogStore
        let runtime: ComposeRuntime
        let events = Locked<[RuntimeEvent]>([])

        init(engine: DockerEngine.Engine, environment: [String: String]? = nil,
             postgresImage: String = ComposeRuntimeTests.postgresImage, postgresPort: Int? = nil) throws {
            directory = makeTempDirectory("sagedev-compose")
            let name = "sgt" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            // The backend's source lives in the project (it is bind-mounted; the repository stays untouched).
            // The backend's build is warm; each container fills its node_modules volume from the image's Debian packages.
            try PreparedApps.copy(into: directory, linkModules: false)
            let backend = Config.App(directory: "apps/backend", devCommand: "node --watch dist/server.js",
                                     installCommand: "link-debian-node-modules",
                                     port: freePort(), healthPath: "/health", reloadMode: .self, image: ComposeRuntimeTests.nodeImage)
            var frontend = backend
            frontend.directory = "apps/frontend"
            frontend.devCommand = "esbuild src/main.js --bundle --outdir=public/assets --servedir=public --watch=forever"
            frontend.healthPath = "/"
            frontend.port = freePort()
            let pg = Config.Postgres(image: postgresImage, user: "sage", password: "pg-Secret_1", database: "sage_dev",
                                     port: postgresPort ?? freePort())
            let vk = Config.Valkey(image: ComposeRuntimeTests.valkeyImage, password: "vk-Secret_2", port: freePort())
            let values: [String: String] = [
                "SAGEDEV_PROJECT": name, "SAGEDEV_RUNTIME": "compose", "SAGEDEV_BIND_ADDRESS": "127.0.0.1",
                "POSTGRES_IMAGE": pg.image, "POSTGRES_USER": pg.user, "POSTGRES_PASSWORD": pg.password,
                "POSTGRES_DB": pg.database, "POSTGRES_PORT": String(pg.port),
                "VALKEY_IMAGE": vk.image, "VALKEY_PASSWORD": vk.password, "VALKEY_PORT": String(vk.port),
                "BACKEND_IMAGE": backend.image, "BACKEND_DIR": backend.directory, "BACKEND_PORT": String(backend.port),
                "FRONTEND_IMAGE": frontend.image, "FRONTEND_DIR": frontend.directory, "FRONTEND_PORT": String(frontend.port),
            ]
            let env = values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
            try FileDescriptor.writeFileAtomically(directory + "/.env", Array(env.utf8), mode: 0o600)
            config = Config(projectName: name, projectDirectory: directory, runtime: .compose, bindAddress: "127.0.0.1",
                            postgres: pg, valkey: vk, backend: backend, frontend: frontend,
                            migrationsDirectory: "db/migrations", seedsDirectory: "db/seeds", migrateCommand: "", seedCommand: "",
                            watchIgnore: [], watchDebounceMilliseconds: 50, passthrough: [:], values: values)
            self.environment = environment ?? engine.environment
            logs = LogStore(directory: directory + "/.sagedev/logs")
            runtime = ComposeRuntime(logs: logs, environment: self.environment,
                                     options: .init(pullMissingImages: true, pullSeconds: 60, buildSeconds: 300, upSeconds: 120,
                                                    stopTimeoutSeconds: 5))
            let events = self.events
            runtime.setEventHandler { e in events.withValue { $0.append(e) } }
        }

        /// Removes everything the project made in the engine (containers, network, volumes) and on disk.
        func tearDown() {
            try? runtime.down(config: config, volumes: true)
            runtime.close()
            removeTree(directory)
        }

        func psql(_ sql: String) throws -> CompletedProcess {
            var env = ProcessEnvironment.current()
            env["PGPASSWORD"] = config.postgres.password
            env["PGCONNECT_TIMEOUT"] = "5"
            return try Subprocess.run([try Repo.tool("psql"), "-h", "127.0.0.1", "-p", String(config.postgres.port),
                                       "-U", config.postgres.user, "-d", config.postgres.database, "-v", "ON_ERROR_STOP=1",
                                       "-qAtc", sql], environment: env, deadline: .after(seconds: 30))
        }

        /// Waits until postgres accepts a real login on the published port.
        func waitForPostgres(_ seconds: Double = 90) -> Bool {
            pollUntil(.after(seconds: seconds)) { (try? self.psql("select 1"))?.stdoutText == "1\n" }
        }

        func valkeyCLI(_ args: [String], password: String?) throws -> CompletedProcess {
            var env = ProcessEnvironment.current()
            if let password { env["REDISCLI_AUTH"] = password } else { env.removeValue(forKey: "REDISCLI_AUTH") }
            return try Subprocess.run([try Repo.tool("valkey-cli"), "-h", "127.0.0.1", "-p", String(config.valkey.port)] + args,
                                      environment: env, deadline: .after(seconds: 10))
        }

        func docker(_ args: [String]) throws -> CompletedProcess {
            try Subprocess.run(["docker"] + args, environment: environment, deadline: .after(seconds: 60))
        }

        var composeProject: String { ComposeRuntime.projectName(config) }
    }


    // MARK: bring-up and real clients

    @Test func postgresComesUpAndPsqlWorksOnThePublishedPort() throws {
        let engine = try DockerEngine.shared()
        let p = try Project(engine: engine)
        defer { p.tearDown() }

        try p.runtime.prepare(p.config)
        let file = ComposeRuntime.composeFilePath(p.config)
        var st = stat()
        #expect(stat(file, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let yaml = FileDescriptor.readText(file) ?? ""
        #expect(yaml.contains("image: sagedev-test/postgres:18"))
        #expect(!yaml.contains(p.config.postgres.password), "the compose file must not hold the password")
        // The real Compose accepts the file as written.
        let check = try p.docker(["compose", "-p", p.composeProject, "-f", file, "--env-file", p.directory + "/.env", "config", "-q"])
        #expect(check.status.isSuccess, "docker compose config -q: \(check.stderrText)")

        let running = try p.runtime.start(.postgres, config: p.config)
        #expect(running.containerID?.count == 64)
        #expect(running.containerName == "\(p.composeProject)-postgres-1")
        #expect((running.pid ?? 0) > 1)
        #expect(p.waitForPostgres(), "psql never logged in on 127.0.0.1:\(p.config.postgres.port)")

        let r = try p.psql("create table notes(id int primary key, body text); insert into notes values (1, 'kept'); select body from notes")
        #expect(r.stdoutText == "kept\n", "\(r.stderrText)")
        let version = try p.psql("show server_version_num")
        #expect(version.stdoutText.hasPrefix("18"))

        let d = p.runtime.details(.postgres, config: p.config)
        #expect(d["container"] == running.containerName)
        #expect(d["state"] == "running")
        #expect(d["ports"]?.contains("127.0.0.1:\(p.config.postgres.port)->5432/tcp") == true, "\(d)")
        #expect(d["health"] != nil, "the compose healthcheck is in the file: \(d)")
        // The container's output reaches the log store through `logs -f --timestamps`.
        #expect(pollUntil(.after(seconds: 30)) {
            p.logs.tail("postgres", 200).contains { $0.text.contains("database system is ready to accept connections") }
        }, "log lines: \(p.logs.tail("postgres", 20).map(\.text))")
        // A stop requested through the runtime is not an exit to report.
        try p.runtime.stop(.postgres, config: p.config)
        #expect(p.runtime.details(.postgres, config: p.config)["state"] == "exited")
        #expect(p.events.current.isEmpty, "\(p.events.current)")
    }

    @Test func valkeyRequiresItsPasswordAndAnswersValkeyCli() throws {
        let engine = try DockerEngine.shared()
        let p = try Project(engine: engine)
        defer { p.tearDown() }
        try p.runtime.prepare(p.config)
        _ = try p.runtime.start(.valkey, config: p.config)

        #expect(pollUntil(.after(seconds: 30)) {
            (try? p.valkeyCLI(["ping"], password: p.config.valkey.password))?.stdoutText == "PONG\n"
        })
        let set = try p.valkeyCLI(["set", "greeting", "hello"], password: p.config.valkey.password)
        #expect(set.stdoutText == "OK\n")
        let noAuth = try p.valkeyCLI(["get", "greeting"], password: nil)
        #expect(noAuth.stdoutText.contains("NOAUTH"), "\(noAuth.stdoutText)")
        // A job runs inside the running container (exec -T); REDISCLI_AUTH comes from the compose file.
        let job = try p.runtime.runJob("valkey-cli get greeting", service: .valkey, config: p.config, deadline: .after(seconds: 30))
        #expect(job.status == .exited(0))
        #expect(job.stdoutText == "hello\n")
        #expect(p.logs.tail("valkey", 50).contains { $0.text == "hello" })
    }

    @Test func allFourComeUpTheAppsBuildOfflineAndTheComposeHealthchecksPass() throws {
        let engine = try DockerEngine.shared()
        let p = try Project(engine: engine)
        defer { p.tearDown() }
        try p.runtime.prepare(p.config)
        for s in p.config.services.serviceIDs { _ = try p.runtime.start(s, config: p.config) }

        // The apps' dev images were built from the local node image (no registry), and serve on their ports.
        for s in [ServiceID.backend, .frontend] {
            let url = p.config.httpURL(s)
            var body = ""
            #expect(pollUntil(.after(seconds: 90)) {
                guard let r = try? Subprocess.run(["curl", "-sf", "--max-time", "3", url], deadline: .after(seconds: 10)),
                      r.status.isSuccess else { return false }
                body = r.stdoutText
                return true
            }, "curl \(url) never succeeded; log: \(p.logs.tail(s.rawValue, 20).map(\.text))")
            #expect(body.contains(s == .backend ? "\"status\":\"ok\"" : "<title>Sage</title>"), "\(url): \(body)")
        }
        // The healthchecks in the generated file work in these images (for people who run compose by hand).
        var last: [ServiceID: String] = [:]
        #expect(pollUntil(.after(seconds: 90)) {
            for s in p.config.services.serviceIDs { last[s] = p.runtime.details(s, config: p.config)["health"] ?? "none" }
            return last.values.allSatisfy { $0 == "healthy" }
        }, "compose health: \(last)")
        #expect(p.events.current.isEmpty, "\(p.events.current)")
    }

    // MARK: supervision

    @Test func killingThePostgresMainProcessIsReportedAsAnExit() throws {
        let engine = try DockerEngine.shared()
        let p = try Project(engine: engine)
        defer { p.tearDown() }
        try p.runtime.prepare(p.config)
        let first = try p.runtime.start(.postgres, config: p.config)
        #expect(p.waitForPostgres())
        #expect(try p.psql("create table t(v int); insert into t values (42)").status.isSuccess)

        let pid = try #require(first.pid)
        #expect(kill(pid, SIGKILL) == 0)
        #expect(pollUntil(.after(seconds: 20)) { !p.events.current.isEmpty }, "no exit event after SIGKILL of pid \(pid)")
        #expect(p.events.current == [.exited(.postgres, .signalled(SIGKILL))])

        // Started again through Compose: the same named volume, so the committed row is still there.
        let second = try p.runtime.start(.postgres, config: p.config)
        #expect(second.pid != first.pid)
        #expect(p.waitForPostgres())
        #expect(try p.psql("select v from t").stdoutText == "42\n")
        #expect(p.events.current.count == 1)

        // A runtime started afresh (a new daemon) adopts the running container.
        let again = ComposeRuntime(logs: p.logs, environment: p.environment)
        defer { again.close() }
        let adopted = again.adopt(p.config)
        #expect(adopted[.postgres]?.containerID == second.containerID)
        #expect(adopted[.valkey] == nil)
    }

    @Test func downKeepsTheNamedVolumeUnlessVolumesIsGiven() throws {
        let engine = try DockerEngine.shared()
        let p = try Project(engine: engine)
        defer { p.tearDown() }
        try p.runtime.prepare(p.config)
        _ = try p.runtime.start(.postgres, config: p.config)
        #expect(p.waitForPostgres())
        #expect(try p.psql("create table kept(v text); insert into kept values ('still here')").status.isSuccess)

        let volumeFilter = ["volume", "ls", "-q", "--filter", "label=com.docker.compose.project=\(p.composeProject)"]
        try p.runtime.down(config: p.config, volumes: false)
        #expect(try p.runtime.containers(config: p.config).isEmpty)
        #expect(try p.docker(volumeFilter).stdoutText.contains("\(p.composeProject)_postgres-data"))

        _ = try p.runtime.start(.postgres, config: p.config)
        #expect(p.waitForPostgres())
        #expect(try p.psql("select v from kept").stdoutText == "still here\n")

        try p.runtime.down(config: p.config, volumes: true)
        #expect(try p.runtime.containers(config: p.config).isEmpty)
        #expect(try p.docker(volumeFilter).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    // MARK: bad setups: a clear error, quickly, never a hang

    @Test func anUnreachableEngineFailsQuicklyAndSaysSo() throws {
        let engine = try DockerEngine.shared()
        let dead = makeTempDirectory("sagedev-dead-engine")
        defer { removeTree(dead) }
        // A socket file nobody accepts on: connect() is refused.
        let listener = try Listener.unix(path: dead + "/docker.sock")
        listener.close()
        var env = engine.environment
        env["DOCKER_HOST"] = "unix://\(dead)/docker.sock"
        let p = try Project(engine: engine, environment: env)
        defer { removeTree(p.directory) }

        let t0 = monotonicNanoseconds()
        #expect(!DockerEngineProbe.answers(environment: env))
        #expect { try p.runtime.prepare(p.config) } throws: { error in
            let m = "\(error)"
            return m.contains("no Docker engine answers at unix://\(dead)/docker.sock") && m.contains("SAGEDEV_RUNTIME=native")
        }
        #expect(millisecondsSince(t0) < 10_000)
        #expect(DockerEngineProbe.answers(environment: engine.environment))
    }

    @Test func aMissingImageIsNamedWithItsEnvKey() throws {
        let engine = try DockerEngine.shared()
        let p = try Project(engine: engine, postgresImage: "sagedev-test/no-such-postgres:0")
        defer { p.tearDown() }
        let t0 = monotonicNanoseconds()
        #expect { try p.runtime.prepare(p.config) } throws: { error in
            let m = "\(error)"
            return m.contains("sagedev-test/no-such-postgres:0") && m.contains("POSTGRES_IMAGE")
        }
        #expect(millisecondsSince(t0) < 60_000)
    }

    @Test func aTakenPublishedPortIsNamed() throws {
        let engine = try DockerEngine.shared()
        let holder = try Listener.tcp(host: "127.0.0.1", port: 0)
        defer { holder.close() }
        let p = try Project(engine: engine, postgresPort: holder.port)
        defer { p.tearDown() }
        try p.runtime.prepare(p.config)
        let t0 = monotonicNanoseconds()
        #expect { _ = try p.runtime.start(.postgres, config: p.config) } throws: { error in
            let m = "\(error)"
            return m.contains("port \(holder.port)") && m.contains("POSTGRES_PORT")
        }
        #expect(millisecondsSince(t0) < 10_000)
        #expect(try p.runtime.containers(config: p.config).allSatisfy { !$0.isRunning })
    }
}

/// Re-checks a condition every 100 ms (a timed wait in poll, never a sleep) until it holds or the deadline passes.
@discardableResult
fileprivate func pollUntil(_ deadline: Deadline, _ condition: () -> Bool) -> Bool {
    while !deadline.hasPassed {
        if condition() { return true }
        _ = poll(nil, 0, 100)
    }
    return condition()
}
