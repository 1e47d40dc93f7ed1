import Foundation
import Glibc
import Testing
@testable import SageCore
import SageFuzz
import SageSystem
import SageWire

/// Runs the real Docker Compose v2 CLI. `docker compose config` needs no engine. A missing docker CLI or
/// Compose plugin fails the test: scripts/bootstrap.sh installs both.
enum DockerCompose {
    static func run(_ args: [String], environment extra: [String: String] = [:], in dir: String? = nil) throws -> CompletedProcess {
        let current = ProcessEnvironment.current()
        var env = ["PATH": current["PATH"] ?? "/usr/local/bin:/usr/bin:/bin", "HOME": current["HOME"] ?? "/root"]
        if let d = current["DOCKER_CONFIG"] { env["DOCKER_CONFIG"] = d }
        for (k, v) in extra { env[k] = v }
        guard ProcessEnvironment.which("docker", path: env["PATH"]) != nil else {
            throw TestFailure("the docker CLI is not on PATH: run scripts/bootstrap.sh")
        }
        return try Subprocess.run(["docker", "compose"] + args, environment: env, workingDirectory: dir,
                                  deadline: .after(seconds: 60))
    }

    /// `docker compose … config --format json`, parsed; throws with Compose's stderr when it fails.
    static func configJSON(_ args: [String], environment: [String: String] = [:]) throws -> [String: Any] {
        let r = try run(args + ["config", "--format", "json"], environment: environment)
        guard r.status.isSuccess else { throw TestFailure("docker compose config failed: \(r.stderrText)") }
        guard let obj = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any] else {
            throw TestFailure("docker compose config printed no JSON object")
        }
        return obj
    }

    /// Compose writes a literal `$` of a resolved value as `$$` in its output.
    static func unescape(_ s: String) -> String { s.replacing("$$", with: "$") }
}

@Suite("Compose v2 agrees")
struct ComposeConfigTests {
    @Test func composePluginIsInstalled() throws {
        let r = try DockerCompose.run(["version"])
        #expect(r.status.isSuccess, "docker compose version: \(r.stderrText)")
        #expect(r.stdoutText.contains("Docker Compose version v2") || r.stdoutText.contains("Docker Compose version 2"),
                "\(r.stdoutText)")
    }

    // MARK: - differential .env parsing

    struct EnvCase: CustomTestStringConvertible, Sendable {
        let name: String
        let text: String
        let environment: [String: String]
        /// Keys to ask Compose about besides the ones sagedev found (to catch keys only Compose sees).
        let probes: [String]
        init(_ name: String, _ text: String, env: [String: String] = [:], probes: [String] = []) {
            self.name = name; self.text = text; self.environment = env; self.probes = probes
        }
        var testDescription: String { name }
    }

    static let handWritten: [EnvCase] = [
        EnvCase("plain", "A=1\nB=two words\n"),
        EnvCase("no final newline", "A=1"),
        EnvCase("comments", "# top\n\n   # indented\nA=1\n\n\nB=2 # trailing\n"),
        EnvCase("export", "export A=1\nexport\tB=2\nexport  C=3\nexportD=4\nexport=5\n", probes: ["export", "exportD"]),
        EnvCase("export alone", "export\nA=1\n", probes: ["export"]),
        EnvCase("inline comments", "A=abc#def\nB=abc #def\nC=abc\t#def\nD=a#b #c\nE= #c\nF=#c\n"),
        EnvCase("trimming", "  A   =   spaced  value  \n\t B = \"2\"  \n"),
        EnvCase("yaml colon", "A: 1\nB=b:c\nC:D=1\nE==b\n"),
        EnvCase("empty values", "A=\nB=\"\"\nC=''\n"),
        EnvCase("single quotes", "B=bee\nA='$B ${B} \\n # not a comment'\nC='x\\'y'\nD='a\\\\b\\nc'\n"),
        EnvCase("double quote escapes", "A=\"a\\nb\\tc\\\"d\\\\e\"\nB=\"\\a\\b\\f\\r\\v|\\c|\\q|\\'\"\n"),
        EnvCase("octal", "A=\"x\\0123\\01\\0\\08\\0400\"\nB=\"\\377\"\nC=\"\\0377\\0101\"\n"),
        EnvCase("dollar escapes", "A=x\nB=\"${A}\\${A}$${A}\"\nC=$$A\nD='$$'\n"),
        EnvCase("multi-line quotes", "A=\"multi\nline\"\nB='one\ntwo'\nC=3\n"),
        EnvCase("unquoted backslashes", "A=x\\ny\\$z\nB=back\\\\slash\n"),
        EnvCase("interpolation order", "B=bee\nA=$B/${B}/x$B-y\nC=[$D]\nD=1\nB_C=2\nE=$B_C$B\n"),
        EnvCase("defaults", "E=\nA=${U:-d1}|${E:-d2}|${U-d3}|${E-d4}\n"),
        EnvCase("alternatives", "E=\nS=v\nA=${S:+a1}|${E:+a2}|${U:+a3}|${S+a4}|${E+a5}|${U+a6}\n"),
        EnvCase("required when set", "S=v\nE=\nA=${S:?m}|${S?m}|${E?m}\n"),
        EnvCase("lone dollars", "A=x$\nB=$1\nC=a$ b\nD=$-\nE=$\n"),
        EnvCase("nesting", "A=${U:-${V:-deep}}z\nB=${U:-x} and ${V:-y}\n"),
        EnvCase("brace quirks", "A=${U:-x}y}\nB=${U-}x}\nC=${U:-{}}\nD=${U:-a}b}c}\n"),
        EnvCase("unset variable", "A=${UNSET}x$UNSET\n"),
        EnvCase("environment in interpolation", "A=file\nB=${A}\n", env: ["A": "proc"]),
        EnvCase("environment overrides", "A=${A:-self}-file\nB=$A\nC=file\n", env: ["A": "proc", "C": "c-proc"]),
        EnvCase("inherited keys", "A\nB\nC=$A\n", env: ["A": "from-env"]),
        EnvCase("CRLF", "A = 1\r\nB=\"2\"\r\nC=x # c\r\nD='q'\r\n"),
        EnvCase("BOM", "\u{FEFF}A=1\n"),
        EnvCase("key characters", "A.B=1\nA-B=2\n1A=3\nA[0]=4\nété=5\n"),
        EnvCase("after a closing quote", "A=\"a\" B=2\nC='c'D=4\nE=\"e\"   # comment\n"),
        EnvCase("reassignment", "A=1\nA=2\nB=$A\n"),
        EnvCase("kelvin sign", "K\u{212A}=1\nA=$K\u{212A}/${K\u{212A}}\n"),
        EnvCase("blank inside a key", "A\tB=1\n", probes: ["A"]),
        EnvCase("process env for :? ", "A=${NEED:?set NEED}\n", env: ["NEED": "ok"]),
        EnvCase("urls and operators in defaults", "A=${U:-http://h:1/p?q=1}\nB=${U:-a-b?c}\n"),
        // Malformed: Compose must refuse them too.
        EnvCase("space in key", "A B=1\n"),
        EnvCase("bad key character", "A$=1\n"),
        EnvCase("quoted key", "\"A\"=1\n"),
        EnvCase("unterminated double", "X=1\nA=\"abc\nB=2\n"),
        EnvCase("unterminated single", "A='abc\n"),
        EnvCase("escaped closing quote", "A=\"abc\\\"\n"),
        EnvCase("empty braces", "A=${}\n"),
        EnvCase("bad operator", "A=${B:x}\n"),
        EnvCase("unclosed brace", "A=ok ${B\n"),
        EnvCase("digit in braces", "A=${1}\n"),
        EnvCase("reference over lines", "A=\"${B:-x\ny}\"\n"),
        EnvCase(":? unset", "A=${B:?oops}\n"),
        EnvCase(":? empty", "B=\nA=${B:?}\n"),
        EnvCase("? unset", "A=${B?need B}\n"),
        EnvCase("required in unused default", "A=${A:-${B:?inner}}\n", env: ["A": "set"]),
        EnvCase("no name", "=1\n"),
        EnvCase("bare key at end", "A=1\nB"),
    ]

    /// Deterministic random files built from the characters that matter to the grammar.
    static let generated: [EnvCase] = {
        var rng = SeededRandom(seed: 0x5A6E_D0C5)
        let keys = ["A", "B", "C", "DB_URL", "x.y", "K-1", "k2"]
        let fragments = ["a", "b", " ", "  ", "\t", "#", " #", "$", "$$", "$A", "${A}", "${B:-d}", "${U-x}", "${A:+y}",
                         "${C?}", "}", "{", "\\", "\\n", "\\\"", "\\'", "\\$", "\\0101", "'", "\"", "=", ":", "é", "x y"]
        var cases: [EnvCase] = []
        for n in 0..<40 {
            var text = ""
            for _ in 0..<Int(rng.next() % 6 + 1) {
                let roll = rng.next() % 10
                if roll == 0 { text += "# " + fragments[Int(rng.next() % UInt64(fragments.count))] + "\n"; continue }
                if roll == 1 { text += "\n"; continue }
                let key = keys[Int(rng.next() % UInt64(keys.count))]
                var value = ""
                for _ in 0..<Int(rng.next() % 5) { value += fragments[Int(rng.next() % UInt64(fragments.count))] }
                switch rng.next() % 4 {
                case 0: value = "\"" + value.replacing("\"", with: "\\\"") + "\""
                case 1: value = "'" + value.replacing("'", with: "") + "'"
                default: break
                }
                text += (rng.next() % 5 == 0 ? "export " : "") + key + "=" + value + "\n"
            }
            cases.append(EnvCase("random \(n)", text, env: n % 3 == 0 ? ["A": "env-a"] : [:], probes: keys))
        }
        return cases
    }()

    @Test("same values as docker compose", arguments: handWritten + generated)
    func differential(_ c: EnvCase) throws {
        let dir = makeTempDirectory("sagedev-dotenv")
        defer { removeTree(dir) }
        let ours = DotEnv.parse(c.text, environment: c.environment)
        let effective = ours.effectiveValues(environment: c.environment)
        let keys = Set(ours.values.keys).union(c.probes).filter { !$0.isEmpty }.sorted()
        var yaml = "name: differential\nservices:\n  probe:\n    image: busybox\n"
        yaml += keys.isEmpty ? "    environment: []\n" : "    environment:\n" + keys.map { "      - \(YAML.doubleQuoted($0))\n" }.joined()
        try FileDescriptor.writeFileAtomically(dir + "/case.env", Array(c.text.utf8))
        try FileDescriptor.writeFileAtomically(dir + "/compose.yaml", Array(yaml.utf8))
        let r = try DockerCompose.run(["--env-file", dir + "/case.env", "-f", dir + "/compose.yaml", "config", "--format", "json"],
                                      environment: c.environment)
        if !ours.errors.isEmpty {
            #expect(!r.status.isSuccess, "sagedev rejects \(ours.errors) but Compose accepts:\n\(c.text)\n\(r.stdoutText)")
            return
        }
        #expect(r.status.isSuccess, "Compose rejects what sagedev accepts:\n\(c.text)\n\(r.stderrText)")
        guard r.status.isSuccess else { return }
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any]
        let services = json?["services"] as? [String: Any]
        let environment = (services?["probe"] as? [String: Any])?["environment"] as? [String: Any] ?? [:]
        for key in keys {
            let theirs = (environment[key] as? String).map(DockerCompose.unescape)
            let mine = effective[key] ?? c.environment[key]
            #expect(theirs == mine, "\(key): compose \(theirs.debugDescription), sagedev \(mine.debugDescription) for\n\(c.text)")
        }
    }

    // MARK: - the generated compose file

    @Test func committedComposeFilePassesConfigQuiet() throws {
        let r = try DockerCompose.run(["--env-file", Repo.root + "/env.example", "-f", Repo.root + "/compose/compose.yaml",
                                       "config", "-q"])
        #expect(r.status.isSuccess, "\(r.stderrText)")
        #expect(r.stdoutText.isEmpty)
    }

    /// Writes `.env` into a fresh project and the generated file to `.sagedev/`, as `sagedev compose --write` does.
    func project(_ env: String) throws -> (dir: String, config: Config, file: String) {
        let dir = makeTempDirectory("sagedev-compose")
        try FileDescriptor.writeFileAtomically(dir + "/.env", Array(env.utf8))
        let config = try ConfigLoader.load(projectDirectory: dir, environment: [:])
        try FileDescriptor.makeDirectories(dir + "/.sagedev")
        let file = dir + "/.sagedev/compose.yaml"
        try FileDescriptor.writeFileAtomically(file, Array(ComposeFile.generate(config).utf8), mode: 0o600)
        for s in [ServiceID.backend, .frontend] {
            try FileDescriptor.writeFileAtomically(dir + "/.sagedev/" + ComposeFile.dockerfileName(s),
                                                   Array(ComposeFile.dockerfile(for: s).utf8))
        }
        return (dir, config, file)
    }

    @Test func generatedFileResolvesToTheConfiguration() throws {
        let pg = "Pg.Secret_1~!*+,;=:&'()$", vk = "Vk-Secret-2"
        let (dir, config, file) = try project("""
            SAGEDEV_PROJECT=diff-proj
            POSTGRES_PASSWORD=\(EnvExample.quote(pg))
            VALKEY_PASSWORD=\(vk)
            POSTGRES_USER=app-user
            POSTGRES_DB=app_db
            POSTGRES_PORT=25432
            BACKEND_DIR=./services/api/
            BACKEND_DEV_COMMAND='node --watch server.js # not a comment $HOME "q"'
            BACKEND_INSTALL_COMMAND="npm ci"
            FRONTEND_HEALTH_PATH=/ready
            ANTHROPIC_API_KEY=sk-ant-secret-3

            """)
        defer { removeTree(dir) }
        let text = try #require(FileDescriptor.readText(file))
        for secret in [pg, vk, "sk-ant-secret-3"] { #expect(!text.contains(secret), "\(secret) is in the compose file") }

        let quiet = try DockerCompose.run(["--env-file", dir + "/.env", "-f", file, "config", "-q"])
        #expect(quiet.status.isSuccess, "\(quiet.stderrText)")

        let json = try DockerCompose.configJSON(["--env-file", dir + "/.env", "-f", file])
        #expect(json["name"] as? String == "diff-proj")
        let services = try #require(json["services"] as? [String: [String: Any]])
        #expect(Set(services.keys) == ["postgres", "valkey", "backend", "frontend"])
        for (name, s) in services {
            for p in s["ports"] as? [[String: Any]] ?? [] {
                #expect(p["host_ip"] as? String == "127.0.0.1", "\(name) publishes \(p)")
            }
            #expect((s["networks"] as? [String: Any])?.keys.contains("sage-network") == true)
        }
        let postgresPorts = services["postgres"]?["ports"] as? [[String: Any]]
        #expect(postgresPorts?.first?["published"] as? String == "25432")
        #expect(postgresPorts?.first?["target"] as? Int == 5432)

        func env(_ s: String) -> [String: String] {
            ((services[s]?["environment"] as? [String: Any]) ?? [:]).compactMapValues { ($0 as? String).map(DockerCompose.unescape) }
        }
        #expect(env("postgres")["POSTGRES_PASSWORD"] == pg)
        #expect(env("postgres")["POSTGRES_USER"] == "app-user")
        #expect(env("backend")["DATABASE_URL"] == "postgres://app-user:\(pg)@postgres:5432/app_db")
        #expect(env("backend")["VALKEY_URL"] == "redis://:\(vk)@valkey:6379/0")
        #expect(env("backend")["REDIS_URL"] == env("backend")["VALKEY_URL"])
        #expect(env("backend")["SAGEDEV_DEV_COMMAND"] == config.backend.devCommand)
        #expect(env("backend")["SAGEDEV_INSTALL_COMMAND"] == "npm ci")
        #expect(env("backend")["ANTHROPIC_API_KEY"] == "sk-ant-secret-3")
        #expect(env("frontend")["ANTHROPIC_API_KEY"] == "sk-ant-secret-3")
        #expect(env("frontend")["BACKEND_URL"] == "http://backend:3000")
        #expect(env("valkey")["REDISCLI_AUTH"] == vk)
        #expect((services["valkey"]?["command"] as? [String])?.suffix(2) == ["--requirepass", vk])

        let build = services["backend"]?["build"] as? [String: Any]
        #expect(build?["context"] as? String == dir + "/.sagedev")
        #expect(build?["dockerfile"] as? String == "backend.Dockerfile.dev")
        let volumes = services["backend"]?["volumes"] as? [[String: Any]]
        #expect(volumes?.first?["source"] as? String == dir + "/services/api")
        #expect(volumes?.first?["target"] as? String == "/app")
        #expect(volumes?.last?["type"] as? String == "volume")
        let depends = services["backend"]?["depends_on"] as? [String: [String: Any]]
        #expect(depends?["postgres"]?["condition"] as? String == "service_healthy")
        #expect(depends?["valkey"]?["condition"] as? String == "service_healthy")
        let health = services["frontend"]?["healthcheck"] as? [String: Any]
        #expect((health?["test"] as? [String])?.last == "http://127.0.0.1:5173/ready")
        #expect(health?["start_interval"] as? String == "1s")
    }

    @Test func secretsComeOnlyFromDotEnvOrTheEnvironment() throws {
        let (dir, _, file) = try project("POSTGRES_PASSWORD=a\nVALKEY_PASSWORD=b\n")
        defer { removeTree(dir) }
        // Without the env file Compose cannot resolve the references and says which variable is missing.
        let r = try DockerCompose.run(["-f", file, "config", "-q"])
        #expect(!r.status.isSuccess)
        #expect(r.stderrText.contains("POSTGRES_PASSWORD must be set in .env") || r.stderrText.contains("VALKEY_PASSWORD must be set in .env"),
                "\(r.stderrText)")
        // The process environment overrides .env, as it does for sagedev.
        let json = try DockerCompose.configJSON(["--env-file", dir + "/.env", "-f", file], environment: ["POSTGRES_PASSWORD": "from-env"])
        let services = json["services"] as? [String: [String: Any]]
        #expect((services?["postgres"]?["environment"] as? [String: Any])?["POSTGRES_PASSWORD"] as? String == "from-env")
    }

    @Test func variantsPassConfigQuiet() throws {
        let variants = [
            "POSTGRES_PASSWORD=p\nVALKEY_PASSWORD=\n",
            "POSTGRES_PASSWORD=p\nVALKEY_PASSWORD=v\nSAGEDEV_BIND_ADDRESS=::1\n",
            "POSTGRES_PASSWORD=p\nVALKEY_PASSWORD=v\nSAGEDEV_BIND_ADDRESS=0.0.0.0\nBACKEND_DIR=/abs/api\nFRONTEND_DIR=.\n",
            "POSTGRES_PASSWORD=p\nVALKEY_PASSWORD=v\nEMPTY_SECRET=\nTOKEN=t\nBACKEND_DEV_COMMAND=\"a: b - [c] {d} & *e | f > g ' h\"\n",
        ]
        for v in variants {
            let (dir, config, file) = try project(v)
            defer { removeTree(dir) }
            let r = try DockerCompose.run(["--env-file", dir + "/.env", "-f", file, "config", "-q"])
            #expect(r.status.isSuccess, "\(v): \(r.stderrText)")
            let json = try DockerCompose.configJSON(["--env-file", dir + "/.env", "-f", file])
            let services = json["services"] as? [String: [String: Any]] ?? [:]
            for (name, s) in services {
                for p in s["ports"] as? [[String: Any]] ?? [] {
                    #expect(p["host_ip"] as? String == config.bindAddress, "\(name) \(p)")
                }
            }
            let backendEnv = services["backend"]?["environment"] as? [String: Any]
            #expect((backendEnv?["SAGEDEV_DEV_COMMAND"] as? String).map(DockerCompose.unescape) == config.backend.devCommand)
        }
    }

    // MARK: - the command

    @Test func composeCommandPrintsAndWrites() throws {
        let dir = makeTempDirectory("sagedev-compose-cli")
        defer { removeTree(dir) }
        try FileDescriptor.writeFileAtomically(dir + "/.env", Array("POSTGRES_PASSWORD=pw-one\nVALKEY_PASSWORD=pw-two\n".utf8))
        let printed = try sagedev(["compose"], in: dir)
        #expect(printed.status == .exited(0), "\(printed.stderrText)")
        let config = try ConfigLoader.load(projectDirectory: dir, environment: [:])
        #expect(printed.stdoutText == ComposeFile.generate(config))

        let written = try sagedev(["compose", "--write"], in: dir)
        #expect(written.status == .exited(0), "\(written.stderrText)")
        var st = stat()
        #expect(stat(dir + "/.sagedev/compose.yaml", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(FileDescriptor.readText(dir + "/.sagedev/compose.yaml") == printed.stdoutText)
        #expect(FileDescriptor.readText(dir + "/.sagedev/backend.Dockerfile.dev") == ComposeFile.dockerfile(for: .backend))
        let r = try DockerCompose.run(["--env-file", dir + "/.env", "-f", dir + "/.sagedev/compose.yaml", "config", "-q"])
        #expect(r.status.isSuccess, "\(r.stderrText)")
    }

    @Test func composeCommandReportsEveryIssueAndExits78() throws {
        let dir = makeTempDirectory("sagedev-compose-cli")
        defer { removeTree(dir) }
        try FileDescriptor.writeFileAtomically(dir + "/.env", Array("""
            POSTGRES_PASSWORD=hidden-pw-123
            POSTGRES_PORT=99999
            SAGEDEV_RUNTME=native
            VALKEY_PASSWORD="unterminated

            """.utf8))
        let r = try sagedev(["compose"], in: dir)
        #expect(r.status == .exited(78))
        #expect(r.stdoutText.isEmpty)
        #expect(r.stderrText.contains("\(dir)/.env:2:15: POSTGRES_PORT must be a port number from 1 to 65535, not \"99999\""), "\(r.stderrText)")
        #expect(r.stderrText.contains("\(dir)/.env:3:1: unknown key SAGEDEV_RUNTME; did you mean SAGEDEV_RUNTIME?"), "\(r.stderrText)")
        #expect(r.stderrText.contains("\(dir)/.env:4:17: the double-quoted value of VALKEY_PASSWORD"), "\(r.stderrText)")
        #expect(!r.stderrText.contains("hidden-pw-123"))
        #expect(!FileDescriptor.exists(dir + "/.sagedev/compose.yaml"))

        removeTree(dir + "/.env")
        let missing = try sagedev(["compose"], in: dir)
        #expect(missing.status == .exited(78))
        #expect(missing.stderrText.contains("no .env in"), "\(missing.stderrText)")
    }

    func sagedev(_ args: [String], in dir: String) throws -> CompletedProcess {
        var env = ProcessEnvironment.current()
        env["NO_COLOR"] = "1"
        env["SAGEDEV_PROJECT_DIR"] = dir
        for k in ConfigKey.all.map(\.name) { env.removeValue(forKey: k) }
        return try Subprocess.run([SagedevBinary.path] + args, environment: env, workingDirectory: dir,
                                  deadline: .after(seconds: 60))
    }
}
