import Testing
import Glibc
import SageSystem
@testable import SageCore

/// The compose runtime's pure parts: command lines, `ps`/`events` JSON, timestamps, error recognition.
/// The JSON samples are output of Docker Compose v2.26 and Docker Engine 20.10 captured on this machine.
@Suite struct ComposeCLITests {
    static let installation = ComposeInstallation(flavor: .plugin, docker: "/usr/bin/docker", version: "2.26.1")
    static let cli = ComposeCLI(installation: installation, project: "sage", file: "/p/.sagedev/compose.yaml",
                                envFile: "/p/.env", environment: [:], secrets: ["pg-Secret_1"])

    static let psLine = #"{"Command":"\"docker-entrypoint.s…\"","CreatedAt":"2026-11-22 21:10:42 +0000 UTC","ExitCode":0,"Health":"starting","ID":"b0024c39b78a","Image":"sagedev-test/postgres:18","Labels":"com.docker.compose.container-number=1,com.docker.compose.project=cp1,com.docker.compose.service=postgres","LocalVolumes":"1","Mounts":"cp1_pgdata","Name":"cp1-postgres-1","Names":"cp1-postgres-1","Networks":"cp1_sage-network","Ports":"127.0.0.1:25432-\u003e5432/tcp","Project":"cp1","Publishers":[{"URL":"127.0.0.1","TargetPort":5432,"PublishedPort":25432,"Protocol":"tcp"}],"RunningFor":"Less than a second ago","Service":"postgres","Size":"0B","State":"running","Status":"Up Less than a second (health: starting)"}"#
    static let psLine2 = #"{"Command":"\"docker-entrypoint.s…\"","ExitCode":137,"Health":"","ID":"dda05e048f82","Image":"sagedev-test/valkey:8","Labels":"com.docker.compose.project=cp1,com.docker.compose.service=valkey","Name":"cp1-valkey-1","Project":"cp1","Publishers":[],"Service":"valkey","State":"exited","Status":"Exited (137) 2 seconds ago"}"#

    @Test func commandLines() {
        let c = ComposeCLITests.cli
        #expect(c.base == ["/usr/bin/docker", "compose", "--ansi", "never", "-p", "sage", "-f", "/p/.sagedev/compose.yaml", "--env-file", "/p/.env"])
        #expect(Array(c.up(["backend"], build: true, noDeps: true).dropFirst(c.base.count)) == ["up", "-d", "--remove-orphans", "--no-deps", "--build", "backend"])
        #expect(Array(c.ps().dropFirst(c.base.count)) == ["ps", "--all", "--format", "json"])
        #expect(Array(c.logs("postgres", since: "1.5").dropFirst(c.base.count)) == ["logs", "-f", "--timestamps", "--no-log-prefix", "--since", "1.5", "postgres"])
        #expect(Array(c.stop(["valkey"], timeoutSeconds: 5).dropFirst(c.base.count)) == ["stop", "-t", "5", "valkey"])
        #expect(Array(c.restart(["valkey"]).dropFirst(c.base.count)) == ["restart", "valkey"])
        #expect(Array(c.down(volumes: true).dropFirst(c.base.count)) == ["down", "--volumes", "--remove-orphans"])
        #expect(Array(c.down(volumes: false).dropFirst(c.base.count)) == ["down", "--remove-orphans"])
        #expect(Array(c.exec("postgres", ["sh", "-c", "psql"], environmentKeys: ["PGPASSWORD"]).dropFirst(c.base.count)) == ["exec", "-T", "-e", "PGPASSWORD", "postgres", "sh", "-c", "psql"])
        #expect(Array(c.run("backend", ["sh", "-c", "npm test"]).dropFirst(c.base.count)) == ["run", "--rm", "-T", "--no-deps", "backend", "sh", "-c", "npm test"])
        #expect(c.events(since: "10") == ["/usr/bin/docker", "events", "--format", "{{json .}}", "--filter", "type=container",
                                          "--filter", "label=com.docker.compose.project=sage", "--filter", "event=die", "--since", "10"])
        var noEnv = c
        noEnv.envFile = nil
        #expect(!noEnv.base.contains("--env-file"))
    }

    @Test func legacyComposeHasNoAnsiFlagAndUsesDockerPS() {
        var c = ComposeCLITests.cli
        c.installation = ComposeInstallation(flavor: .standalone, docker: "/usr/bin/docker", standalone: "/usr/bin/docker-compose", version: "1.29.2")
        #expect(c.installation.isLegacy)
        #expect(c.base == ["/usr/bin/docker-compose", "-p", "sage", "-f", "/p/.sagedev/compose.yaml", "--env-file", "/p/.env"])
        #expect(c.dockerPS().contains("label=com.docker.compose.project=sage"))
    }

    @Test func secretsNeverShowInMessages() {
        let c = ComposeCLITests.cli
        let shown = c.display(["/usr/bin/docker", "compose", "exec", "postgres", "psql", "postgres://u:pg-Secret_1@h/db"])
        #expect(shown == "docker compose exec postgres psql postgres://u:****@h/db")
        let e = c.failure(["docker", "compose", "up"], status: .exited(1), stdout: "", stderr: "bad password pg-Secret_1\n", service: .postgres)
        #expect(e.message == "`docker compose up` failed (exit code 1): bad password ****")
        #expect(e.service == .postgres)
    }

    @Test func unreachableEngineFailuresCarryAHint() {
        let c = ComposeCLI(installation: ComposeCLITests.installation, project: "p", file: "f", envFile: nil,
                           environment: ["DOCKER_HOST": "unix:///tmp/x.sock"])
        let m = c.failure(c.ps(), status: .exited(1), stdout: "",
                          stderr: "Cannot connect to the Docker daemon at unix:///tmp/x.sock. Is the docker daemon running?\n", service: nil).message
        #expect(m.contains("exit code 1"))
        #expect(m.contains("no Docker engine answers at unix:///tmp/x.sock"))
    }

    @Test func psJSONLinesAndArrays() throws {
        let lines = try ComposeContainer.parseList(ComposeCLITests.psLine + "\n" + ComposeCLITests.psLine2 + "\n")
        #expect(lines.count == 2)
        let pg = lines[0]
        #expect(pg.id == "b0024c39b78a" && pg.name == "cp1-postgres-1" && pg.service == "postgres" && pg.project == "cp1")
        #expect(pg.state == "running" && pg.isRunning && pg.health == "starting")
        #expect(pg.publishers == [.init(url: "127.0.0.1", targetPort: 5432, publishedPort: 25432, proto: "tcp")])
        #expect(pg.portsDescription == "127.0.0.1:25432->5432/tcp")
        #expect(lines[1].state == "exited" && !lines[1].isRunning && lines[1].exitCode == 137)

        let array = try ComposeContainer.parseList("[" + ComposeCLITests.psLine + "," + ComposeCLITests.psLine2 + "]")
        #expect(array == lines)
        #expect(try ComposeContainer.parseList("").isEmpty)
        #expect(try ComposeContainer.parseList("[]\n").isEmpty)
        #expect(throws: RuntimeError.self) { try ComposeContainer.parseList("{\"ID\": ") }
        #expect(throws: RuntimeError.self) { try ComposeContainer.parseList("no json here") }
    }

    @Test func dockerPSJSONFromLegacyPath() throws {
        let line = #"{"Command":"\"sh\"","ID":"0123456789ab","Image":"x","Labels":"com.docker.compose.service=valkey,com.docker.compose.project=p","Names":"p_valkey_1","Ports":"","Status":"Up 3 minutes (healthy)"}"#
        let c = try #require(try ComposeContainer.parseList(line).first)
        #expect(c.service == "valkey" && c.project == "p" && c.name == "p_valkey_1")
        #expect(c.state == "running" && c.health == "healthy")
    }

    @Test func dieEvents() throws {
        let line = #"{"status":"die","id":"dda05e048f822e2d168f1a0cdb03adaf78a605d42670fd9d6680b103a9b4d5ae","from":"sagedev-test/valkey:8","Type":"container","Action":"die","Actor":{"ID":"dda05e048f822e2d168f1a0cdb03adaf78a605d42670fd9d6680b103a9b4d5ae","Attributes":{"com.docker.compose.project":"cp1","com.docker.compose.service":"valkey","exitCode":"137","image":"sagedev-test/valkey:8","name":"cp1-valkey-1"}},"scope":"local","time":1795381842,"timeNano":1795381842123456789}"#
        let e = try #require(ContainerEvent.parse(line))
        #expect(e.action == "die" && e.service == "valkey" && e.project == "cp1" && e.name == "cp1-valkey-1")
        #expect(e.containerID.hasPrefix("dda05e048f82") && e.timeNano == 1795381842123456789)
        #expect(e.exitStatus == .signalled(SIGKILL))
        var clean = e
        clean.exitCode = 0
        #expect(clean.exitStatus == .exited(0))
        clean.exitCode = 1
        #expect(clean.exitStatus == .exited(1))
        #expect(ContainerEvent.parse("not json") == nil)
        #expect(ContainerEvent.parse(#"{"Type":"network","Action":"connect","Actor":{"ID":"n"}}"#) == nil)
    }

    @Test func dockerTimestamps() throws {
        let a = try #require(splitDockerTimestamp("1970-01-01T00:00:00Z hello"))
        #expect(a.time == 0 && a.text == "hello")
        let b = try #require(splitDockerTimestamp("2000-03-01T00:00:00.5Z x y"))
        #expect(b.time == 951_868_800.5 && b.text == "x y")
        let c = try #require(splitDockerTimestamp("2000-03-01T02:00:00+02:00 z"))
        #expect(c.time == 951_868_800 && c.text == "z")
        let d = try #require(splitDockerTimestamp("2026-11-22T21:10:42.437961947Z 1:M Ready"))
        #expect(abs(d.time - 1_795_381_842.437961947) < 1e-5)
        #expect(splitDockerTimestamp("valkey-1 exited with code 137") == nil)
        #expect(splitDockerTimestamp("2026-13-22T21:10:42Z bad month") == nil)
        #expect(splitDockerTimestamp("") == nil)
    }

    @Test func controlSequencesAreStrippedFromFollowedLines() {
        let line: [UInt8] = [0x1B] + Array("[2K2026-11-22T21:10:42Z ready\r".utf8)
        #expect(LineFollower.clean(line[...]) == "2026-11-22T21:10:42Z ready")
    }

    @Test func portConflictsFromDockerAreNamed() throws {
        let pg = Config.Postgres(image: "p", user: "u", password: "pw", database: "d", port: 26391)
        let vk = Config.Valkey(image: "v", password: "", port: 6379)
        let app = Config.App(directory: "a", devCommand: "", installCommand: "", port: 3000, healthPath: "/", reloadMode: .self, image: "n")
        let c = Config(projectName: "p", projectDirectory: "/p", runtime: .compose, bindAddress: "127.0.0.1", postgres: pg, valkey: vk,
                       backend: app, frontend: app, migrationsDirectory: "", seedsDirectory: "", migrateCommand: "", seedCommand: "",
                       watchIgnore: [], watchDebounceMilliseconds: 50, passthrough: [:], values: [:])
        let proxy = "Error response from daemon: driver failed programming external connectivity on endpoint cp1-valkey-1 (059dd06e): Error starting userland proxy: listen tcp4 127.0.0.1:26391: bind: address already in use"
        let e1 = try #require(ComposeRuntime.portConflict(in: proxy, service: .postgres, config: c))
        #expect(e1.message.hasPrefix("port 26391 on 127.0.0.1 is already in use"))
        #expect(e1.message.contains("POSTGRES_PORT"))
        let allocated = "Error response from daemon: Bind for 127.0.0.1:6379 failed: port is already allocated"
        let e2 = try #require(ComposeRuntime.portConflict(in: allocated, service: .valkey, config: c))
        #expect(e2.message.hasPrefix("port 6379 on 127.0.0.1") && e2.message.contains("VALKEY_PORT"))
        let v6 = "listen tcp6 [::1]:3000: bind: address already in use"
        #expect(ComposeRuntime.portConflict(in: v6, service: .backend, config: c)?.message.hasPrefix("port 3000 on ::1") == true)
        #expect(ComposeRuntime.portConflict(in: "no such image", service: .backend, config: c) == nil)
    }

    @Test func oldEnginesGetNoStartInterval() {
        let yaml = "services:\n  p:\n    healthcheck:\n      interval: 5s\n      start_period: 60s\n      start_interval: 1s\n"
        let old = ComposeRuntime.adaptToEngine(yaml, engineMajorVersion: 20)
        #expect(old.dropped && old.yaml == "services:\n  p:\n    healthcheck:\n      interval: 5s\n      start_period: 60s\n")
        let new = ComposeRuntime.adaptToEngine(yaml, engineMajorVersion: 25)
        #expect(!new.dropped && new.yaml == yaml)
        #expect(DockerEngineProbe.majorVersion("20.10.24+dfsg1") == 20)
        #expect(DockerEngineProbe.majorVersion("28.2.2") == 28)
    }

    @Test func projectNamesFollowComposeRules() {
        func name(_ s: String) -> String {
            let pg = Config.Postgres(image: "", user: "", password: "", database: "", port: 1)
            let app = Config.App(directory: "", devCommand: "", installCommand: "", port: 1, healthPath: "", reloadMode: .self, image: "")
            return ComposeRuntime.projectName(Config(projectName: s, projectDirectory: "/", runtime: .compose, bindAddress: "",
                postgres: pg, valkey: .init(image: "", password: "", port: 2), backend: app, frontend: app, migrationsDirectory: "",
                seedsDirectory: "", migrateCommand: "", seedCommand: "", watchIgnore: [], watchDebounceMilliseconds: 1,
                passthrough: [:], values: [:]))
        }
        #expect(name("sage") == "sage")
        #expect(name("My App.2") == "my-app-2")
        #expect(name("_x") == "x")
        #expect(name("") == "sagedev")
    }

    @Test func detectionFallsBackToComposeV1WithAWarningAndOtherwiseSaysWhatToInstall() throws {
        var template = Array("/tmp/sagedev-compose-detect-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = try? Subprocess.run(["rm", "-rf", dir], deadline: .after(seconds: 10)) }

        // Nothing on PATH: the error says what to install and points at doctor.
        #expect { _ = try ComposeInstallation.detect(environment: ["PATH": dir]) } throws: { e in
            "\(e)".contains("docker CLI is not installed") && "\(e)".contains("sagedev doctor")
        }
        // Only a docker-compose v1 (a stand-in that prints its version): used, with a warning.
        try FileDescriptor.writeFileAtomically(dir + "/docker-compose", Array("#!/bin/sh\necho 1.29.2\n".utf8), mode: 0o755)
        let v1 = try ComposeInstallation.detect(environment: ["PATH": dir])
        #expect(v1.flavor == .standalone && v1.version == "1.29.2" && v1.isLegacy)
        #expect(v1.warning?.contains("Compose v1") == true)
        #expect(v1.command == [dir + "/docker-compose"])
    }

    @Test func theRealComposeV2IsDetected() throws {
        let found = try ComposeInstallation.detect(environment: ProcessEnvironment.current())
        #expect(found.flavor == .plugin)
        #expect(found.version.hasPrefix("2."))
        #expect(found.warning == nil)
    }

    /// `ps` lists, then inspects each container: one removed in between fails the command with "No such container".
    /// A docker stand-in loses that race twice (a real engine cannot be made to on demand); the listing is taken
    /// again instead of being reported as a failure (which the engine took for a crashed service).
    @Test func aContainerRemovedDuringPsIsARaceAndTheListingIsRetaken() throws {
        var template = Array("/tmp/sagedev-compose-race-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = try? Subprocess.run(["rm", "-rf", dir], deadline: .after(seconds: 10)) }
        let script = """
        #!/bin/sh
        n=$(cat \(dir)/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > \(dir)/count
        if [ $n -le 2 ]; then echo "Error response from daemon: No such container: 4f1c0ffee" >&2; exit 1; fi
        echo '\(ComposeCLITests.psLine)'
        """
        try FileDescriptor.writeFileAtomically(dir + "/docker", Array(script.utf8), mode: 0o755)
        let cli = ComposeCLI(installation: ComposeInstallation(flavor: .plugin, docker: dir + "/docker", version: "2.26.1"),
                             project: "cp1", file: dir + "/compose.yaml", envFile: nil, environment: ["PATH": "/usr/bin:/bin"])
        let listed = try cli.containers(deadline: .after(seconds: 20))
        #expect(listed.map(\.service) == ["postgres"])
        #expect(FileDescriptor.readText(dir + "/count")?.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
    }

    /// Any other failure of `ps` is reported at once, with its command and stderr.
    @Test func aFailingPsIsReportedNotRetried() throws {
        var template = Array("/tmp/sagedev-compose-psfail-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = try? Subprocess.run(["rm", "-rf", dir], deadline: .after(seconds: 10)) }
        let script = "#!/bin/sh\necho x >> \(dir)/count\necho 'permission denied while trying to connect' >&2\nexit 1\n"
        try FileDescriptor.writeFileAtomically(dir + "/docker", Array(script.utf8), mode: 0o755)
        let cli = ComposeCLI(installation: ComposeInstallation(flavor: .plugin, docker: dir + "/docker", version: "2.26.1"),
                             project: "cp1", file: dir + "/compose.yaml", envFile: nil, environment: ["PATH": "/usr/bin:/bin"])
        #expect { _ = try cli.containers(deadline: .after(seconds: 20)) } throws: { e in
            "\(e)".contains("ps") && "\(e)".contains("permission denied")
        }
        #expect(FileDescriptor.readText(dir + "/count") == "x\n")
    }
}
