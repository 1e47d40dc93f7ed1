import Glibc
import Testing
@testable import SageCore
import SageSystem

/// The repository root, found from this file's path (Tests/SageCoreTests/ConfigTests.swift).
enum ConfigRepoFiles {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()
    static func text(_ relative: String) -> String? { FileDescriptor.readText(root + "/" + relative) }
    /// Set SAGEDEV_UPDATE_GENERATED=1 to rewrite the committed generated files instead of failing on a difference.
    static var updating: Bool { ProcessEnvironment.current()["SAGEDEV_UPDATE_GENERATED"] == "1" }
}

/// A minimal valid .env body; tests add or replace lines.
let configMinimalEnv = """
    POSTGRES_PASSWORD=pg-secret-value
    VALKEY_PASSWORD=vk-secret-value

    """

func configResolve(_ text: String, env: [String: String] = [:], dir: String = "/projects/my-app") -> ConfigReport {
    ConfigLoader.resolve(text: text, file: "/projects/my-app/.env", projectDirectory: dir, environment: env)
}

@Suite("Config")
struct ConfigTests {
    @Test func minimalFileTakesEveryDefault() throws {
        let r = configResolve(configMinimalEnv)
        #expect(r.errors.isEmpty, "\(r.issues)")
        let c = try #require(r.config)
        #expect(c.projectName == "my-app")
        #expect(c.projectDirectory == "/projects/my-app")
        #expect(c.runtime == .auto)
        #expect(c.bindAddress == "127.0.0.1")
        #expect(c.postgres == Config.Postgres(image: "postgres:18-alpine", user: "sage", password: "pg-secret-value",
                                              database: "sage", port: 5432))
        #expect(c.valkey == Config.Valkey(image: "valkey/valkey:8-alpine", password: "vk-secret-value", port: 6379))
        #expect(c.backend == Config.App(directory: "apps/backend", devCommand: "npm run dev", installCommand: "",
                                        port: 3000, healthPath: "/health", reloadMode: .self, image: "node:20-alpine"))
        #expect(c.frontend == Config.App(directory: "apps/frontend", devCommand: "npm run dev", installCommand: "",
                                         port: 5173, healthPath: "/", reloadMode: .self, image: "node:20-alpine"))
        #expect(c.migrationsDirectory == "db/migrations")
        #expect(c.seedsDirectory == "db/seeds")
        #expect(c.migrateCommand == "" && c.seedCommand == "")
        #expect(c.watchIgnore == ["node_modules", ".git", "dist", "build", ".sagedev"])
        #expect(c.watchDebounceMilliseconds == 50)
        #expect(c.passthrough.isEmpty)
        #expect(c.postgres.binDirectory == nil && c.postgres.osUser == nil && c.valkey.binDirectory == nil)
    }

    @Test func everyKeyIsRead() throws {
        var text = ""
        let values: [String: String] = [
            "SAGEDEV_PROJECT": "proj_1", "SAGEDEV_RUNTIME": "native", "SAGEDEV_BIND_ADDRESS": "::1",
            "SAGEDEV_PORTS": "auto", "SAGEDEV_PORT_STRIDE": "100",
            "POSTGRES_IMAGE": "postgres:18", "POSTGRES_USER": "u_1", "POSTGRES_PASSWORD": "p", "POSTGRES_DB": "d-1",
            "POSTGRES_PORT": "15432", "VALKEY_IMAGE": "valkey/valkey:8", "VALKEY_PASSWORD": "v", "VALKEY_PORT": "16379",
            "BACKEND_DIR": "srv/api", "BACKEND_DEV_COMMAND": "nest start --watch", "BACKEND_INSTALL_COMMAND": "npm ci",
            "BACKEND_PORT": "4000", "BACKEND_HEALTH_PATH": "/healthz", "BACKEND_RELOAD": "restart", "BACKEND_IMAGE": "node:22",
            "BACKEND_FRAMEWORK": "nest", "FRONTEND_FRAMEWORK": "vite",
            "FRONTEND_DIR": "srv/web", "FRONTEND_DEV_COMMAND": "vite", "FRONTEND_INSTALL_COMMAND": "npm ci --prefer-offline",
            "FRONTEND_PORT": "4001", "FRONTEND_HEALTH_PATH": "/index.html", "FRONTEND_RELOAD": "self", "FRONTEND_IMAGE": "node:22-slim",
            "SAGEDEV_MIGRATIONS_DIR": "sql/m", "SAGEDEV_SEEDS_DIR": "sql/s", "SAGEDEV_MIGRATE_COMMAND": "npm run migrate",
            "SAGEDEV_SEED_COMMAND": "npm run seed", "SAGEDEV_WATCH_IGNORE": " a , b,,c ", "SAGEDEV_WATCH_DEBOUNCE_MS": "0",
            "SAGEDEV_POSTGRES_BIN_DIR": "/opt/pg/bin", "SAGEDEV_VALKEY_BIN_DIR": "/opt/vk/bin", "SAGEDEV_POSTGRES_OS_USER": "pg",
            "SAGEDEV_RESET_SPARES": "5",
            "ANTHROPIC_API_KEY": "sk-ant-x", "SAGEDEV_SERVICES": "worker",
        ]
        for (k, v) in values.sorted(by: { $0.key < $1.key }) { text += "\(k)=\(EnvExample.quote(v))\n" }
        text += "WORKER_DIR=srv/worker\n"
        let r = configResolve(text)
        #expect(r.errors.isEmpty, "\(r.issues)")
        let c = try #require(r.config)
        for k in ConfigKey.all {
            let expected = k.name == "SAGEDEV_WATCH_IGNORE" ? "a,b,c" : values[k.name]
            #expect(c.value(forKey: k.name) == expected, "\(k.name)")
        }
        #expect(c.passthrough == ["ANTHROPIC_API_KEY": "sk-ant-x"])
        #expect(c.values["BACKEND_DEV_COMMAND"] == "nest start --watch")
    }

    @Test func theKeyTableIsComplete() {
        let names = ConfigKey.all.map(\.name)
        #expect(Set(names).count == names.count)
        for required in ["SAGEDEV_PROJECT", "SAGEDEV_RUNTIME", "SAGEDEV_BIND_ADDRESS", "POSTGRES_IMAGE", "POSTGRES_USER",
                         "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT", "VALKEY_IMAGE", "VALKEY_PASSWORD", "VALKEY_PORT",
                         "BACKEND_DIR", "BACKEND_DEV_COMMAND", "BACKEND_INSTALL_COMMAND", "BACKEND_PORT", "BACKEND_HEALTH_PATH",
                         "BACKEND_RELOAD", "BACKEND_IMAGE", "FRONTEND_DIR", "FRONTEND_DEV_COMMAND", "FRONTEND_INSTALL_COMMAND",
                         "FRONTEND_PORT", "FRONTEND_HEALTH_PATH", "FRONTEND_RELOAD", "FRONTEND_IMAGE", "SAGEDEV_MIGRATIONS_DIR",
                         "SAGEDEV_SEEDS_DIR", "SAGEDEV_MIGRATE_COMMAND", "SAGEDEV_SEED_COMMAND", "SAGEDEV_WATCH_IGNORE",
                         "SAGEDEV_WATCH_DEBOUNCE_MS", "SAGEDEV_POSTGRES_BIN_DIR", "SAGEDEV_VALKEY_BIN_DIR",
                         "SAGEDEV_POSTGRES_OS_USER", "ANTHROPIC_API_KEY"] {
            #expect(names.contains(required), "\(required)")
        }
        for k in ConfigKey.all {
            #expect(!k.meaning.isEmpty && !k.meaning.contains("\n"), "\(k.name)")
        }
        #expect(ConfigKey.all.filter(\.isSecret).map(\.name) == ["POSTGRES_PASSWORD", "VALKEY_PASSWORD", "ANTHROPIC_API_KEY"])
    }

    @Test func everyIssueIsCollectedWithItsPosition() throws {
        let text = """
            POSTGRES_PASSWORD=pg-secret-value
            VALKEY_PASSWORD=vk-secret-value
            POSTGRES_PORT=54x2
            VALKEY_PORT=70000
            BACKEND_PORT=5173
            SAGEDEV_RUNTIM=native
            SAGEDEV_RUNTIME=docker
            BACKEND_RELOAD=watch
            SAGEDEV_BIND_ADDRESS=localhost
            FRONTEND_HEALTH_PATH=health
            SAGEDEV_WATCH_DEBOUNCE_MS=-1
            SAGEDEV_PROJECT=My App
            BAD KEY=1

            """
        let r = configResolve(text)
        #expect(r.config == nil)
        let byKey = Dictionary(grouping: r.errors, by: { $0.key ?? "" })
        func at(_ key: String) -> (Int?, Int?) { (byKey[key]?.first?.line, byKey[key]?.first?.column) }
        #expect(at("POSTGRES_PORT") == (3, 15))
        #expect(byKey["POSTGRES_PORT"]?.first?.message.contains("port number from 1 to 65535, not \"54x2\"") == true)
        #expect(at("VALKEY_PORT") == (4, 13))
        #expect(byKey["FRONTEND_PORT"]?.first?.message.contains("already BACKEND_PORT") == true)
        #expect(at("SAGEDEV_RUNTIM") == (6, 1))
        #expect(byKey["SAGEDEV_RUNTIM"]?.first?.message.contains("did you mean SAGEDEV_RUNTIME?") == true)
        #expect(byKey["SAGEDEV_RUNTIME"]?.first?.message.contains("auto, compose or native") == true)
        #expect(at("BACKEND_RELOAD") == (8, 16))
        #expect(byKey["SAGEDEV_BIND_ADDRESS"]?.first?.message.contains("127.0.0.1") == true)
        #expect(at("FRONTEND_HEALTH_PATH") == (10, 22))
        #expect(at("SAGEDEV_WATCH_DEBOUNCE_MS") == (11, 27))
        #expect(at("SAGEDEV_PROJECT") == (12, 17))
        #expect(byKey["BAD KEY"]?.first?.line == 13)
        #expect(r.errors.count == 11, "\(r.errors.map(\.description))")
        for e in r.errors { #expect(e.file == "/projects/my-app/.env") }
    }

    @Test func aPortUsedTwiceIsReportedAtTheSecondUse() {
        let r = configResolve(configMinimalEnv + "POSTGRES_PORT=3000\n")
        let e = r.errors.first { $0.key == "BACKEND_PORT" }
        #expect(e?.message == "BACKEND_PORT 3000 is already POSTGRES_PORT; every service needs its own host port")
        #expect(e?.line == nil)  // BACKEND_PORT took its default: no line to point at
    }

    @Test func passwordsAreRequired() {
        let r = configResolve("POSTGRES_USER=x\n")
        let keys = r.errors.compactMap(\.key)
        #expect(keys.contains("POSTGRES_PASSWORD") && keys.contains("VALKEY_PASSWORD"))
        #expect(r.errors.first { $0.key == "POSTGRES_PASSWORD" }?.message.contains("is required") == true)
        let empty = configResolve("POSTGRES_PASSWORD=\nVALKEY_PASSWORD=x\n")
        #expect(empty.errors.map(\.key) == ["POSTGRES_PASSWORD"])
        #expect(empty.errors.first?.line == 1)
    }

    @Test func emptyValkeyPasswordIsAllowedWithAWarning() throws {
        let r = configResolve("POSTGRES_PASSWORD=p\nVALKEY_PASSWORD=\n")
        #expect(r.errors.isEmpty)
        #expect(r.warnings.contains { $0.key == "VALKEY_PASSWORD" })
        #expect(try #require(r.config).valkey.password == "")
    }

    @Test func processEnvironmentOverridesTheFile() throws {
        let r = configResolve(configMinimalEnv + "BACKEND_PORT=4000\nAPP_TOKEN=file\n",
                        env: ["BACKEND_PORT": "4100", "APP_TOKEN": "env", "SAGEDEV_RUNTIME": "native", "PATH": "/bin"])
        let c = try #require(r.config)
        #expect(c.backend.port == 4100)
        #expect(c.runtime == .native)       // a known key set only in the environment counts
        #expect(c.passthrough == ["APP_TOKEN": "env"])  // PATH is not from .env: not passed through
        #expect(c.values["BACKEND_PORT"] == "4100")
    }

    @Test func environmentValuesAreBlamedOnTheEnvironment() {
        let r = configResolve(configMinimalEnv + "POSTGRES_PORT=5432\n", env: ["POSTGRES_PORT": "nope"])
        let e = r.errors.first { $0.key == "POSTGRES_PORT" }
        #expect(e?.file == nil)
        #expect(e?.message.contains("process environment") == true)
    }

    @Test func passthroughKeys() throws {
        let text = configMinimalEnv + """
            ANTHROPIC_API_KEY=sk-ant-123
            STRIPE_KEY=sk_test
            COMPOSE_PROFILES=x
            DOCKER_HOST=unix:///x
            my.dotted=1
            POSTGRES_PASWORD=typo

            """
        let r = configResolve(text)
        let c = try #require(r.config)
        #expect(c.passthrough == ["ANTHROPIC_API_KEY": "sk-ant-123", "STRIPE_KEY": "sk_test", "POSTGRES_PASWORD": "typo"])
        #expect(r.warnings.contains { $0.key == "my.dotted" && $0.message.contains("not passed to the apps") })
        #expect(r.warnings.contains { $0.key == "POSTGRES_PASWORD" && $0.message.contains("did you mean POSTGRES_PASSWORD?") })
    }

    @Test func unknownSagedevKeysAreErrors() {
        let r = configResolve(configMinimalEnv + "SAGEDEV_WATCH_DEBOUNCE=10\nSAGEDEV_TOTALLY_NEW=1\n")
        #expect(r.errors.first { $0.key == "SAGEDEV_WATCH_DEBOUNCE" }?.message.contains("did you mean SAGEDEV_WATCH_DEBOUNCE_MS?") == true)
        #expect(r.errors.first { $0.key == "SAGEDEV_TOTALLY_NEW" }?.message.hasPrefix("unknown key SAGEDEV_TOTALLY_NEW") == true)
    }

    @Test func bindAddresses() {
        for good in ["127.0.0.1", "10.1.2.3", "::1", "fe80::1", "::ffff:127.0.0.1", "2001:db8:0:0:0:0:0:1"] {
            #expect(configResolve(configMinimalEnv + "SAGEDEV_BIND_ADDRESS=\(good)\n").errors.isEmpty, "\(good)")
        }
        for bad in ["256.0.0.1", "1.2.3", "01.2.3.4", "host", "::1::2", "1:2:3:4:5:6:7:8:9", "[::1]"] {
            #expect(configResolve(configMinimalEnv + "SAGEDEV_BIND_ADDRESS=\(bad)\n").errors.count == 1, "\(bad)")
        }
        let open = configResolve(configMinimalEnv + "SAGEDEV_BIND_ADDRESS=0.0.0.0\n")
        #expect(open.errors.isEmpty && open.warnings.contains { $0.key == "SAGEDEV_BIND_ADDRESS" })
    }

    @Test func syntaxErrorsBecomeIssuesWithPositions() {
        let r = configResolve(configMinimalEnv + "A=\"never closed\n")
        #expect(r.config == nil)
        #expect(r.errors.first?.description == "/projects/my-app/.env:3:3: the double-quoted value of A starts here and is never closed; add the closing \"")
    }

    @Test func passwordsNeverAppearInIssues() {
        let secret = "Sup3r-Secret-Pw"
        let text = """
            POSTGRES_PASSWORD=\(secret)
            VALKEY_PASSWORD="\(secret)/@#"
            BACKEND_DEV_COMMAND=run ${POSTGRES_PASSWORD}
            BACKEND_IMAGE=bad image ${POSTGRES_PASSWORD}
            SAGEDEV_RUNTIME=compose
            POSTGRES_PORT=${POSTGRES_PASSWORD}
            BROKEN="${POSTGRES_PASSWORD}${X:?need X}

            """
        let r = configResolve(text)
        #expect(!r.errors.isEmpty)
        for i in r.issues { #expect(!i.description.contains(secret), "\(i.description)") }
        #expect(r.errors.contains { $0.key == "VALKEY_PASSWORD" })
        #expect(r.errors.contains { $0.key == "POSTGRES_PORT" && $0.message.contains("not \"****\"") })
    }

    @Test func urlUnsafePasswordsDependOnTheRuntime() {
        let text = "POSTGRES_PASSWORD='a b@c'\nVALKEY_PASSWORD=ok\n"
        #expect(configResolve(text + "SAGEDEV_RUNTIME=native\n").issues.isEmpty)
        let auto = configResolve(text)
        #expect(auto.errors.isEmpty && auto.warnings.map(\.key) == ["POSTGRES_PASSWORD"])
        #expect(configResolve(text + "SAGEDEV_RUNTIME=compose\n").errors.map(\.key) == ["POSTGRES_PASSWORD"])
    }

    @Test func projectNames() {
        #expect(ConfigLoader.projectName(fromDirectory: "/x/My Project.v2") == "my-project-v2")
        #expect(ConfigLoader.projectName(fromDirectory: "/x/_hidden") == "hidden")
        #expect(ConfigLoader.projectName(fromDirectory: "/") == "sagedev")
    }

    @Test func redactedDescriptionHidesSecrets() throws {
        let c = try #require(configResolve(configMinimalEnv + "ANTHROPIC_API_KEY=sk-ant-123\nFEATURE_FLAG=on\n").config)
        let d = c.redactedDescription
        #expect(d.contains("POSTGRES_PASSWORD=****\n"))
        #expect(d.contains("VALKEY_PASSWORD=****\n"))
        #expect(d.contains("ANTHROPIC_API_KEY=****\n"))
        #expect(d.contains("FEATURE_FLAG=****"))
        #expect(d.contains("POSTGRES_PORT=5432\n"))
        for s in ["pg-secret-value", "vk-secret-value", "sk-ant-123"] { #expect(!d.contains(s)) }
        #expect(d.split(separator: "\n").count == ConfigKey.all.filter { !$0.isPattern }.count + 1)
    }

    @Test func missingEnvFileSaysWhatToCopy() throws {
        let dir = try ConfigTempDirectory()
        do {
            _ = try ConfigLoader.load(projectDirectory: dir.path, environment: [:])
            Issue.record("loading without .env succeeded")
        } catch {
            #expect(error.code == .missingEnvFile)
            #expect(error.message.contains("sagedev's env.example documents every key"))
        }
        try FileDescriptor.writeFileAtomically(dir.path + "/env.example", Array("X=1\n".utf8))
        do {
            _ = try ConfigLoader.load(projectDirectory: dir.path, environment: [:])
        } catch {
            #expect(error.message.hasSuffix("cp env.example .env"))
        }
    }

    @Test func loadReadsTheFileAndThrowsEveryIssue() throws {
        let dir = try ConfigTempDirectory()
        try FileDescriptor.writeFileAtomically(dir.path + "/.env", Array(configMinimalEnv.utf8))
        let c = try ConfigLoader.load(projectDirectory: dir.path + "/", environment: [:])
        #expect(c.projectDirectory == dir.path)
        try FileDescriptor.writeFileAtomically(dir.path + "/.env", Array("POSTGRES_PORT=0\nVALKEY_PORT=x\n".utf8))
        do {
            _ = try ConfigLoader.load(projectDirectory: dir.path, environment: [:])
            Issue.record("an invalid .env loaded")
        } catch {
            #expect(error.code == .invalid)
            #expect(error.errors.count == 4)  // two ports, two passwords
            #expect(error.errors.first?.description == "\(dir.path)/.env:1:15: POSTGRES_PORT must be a port number from 1 to 65535, not \"0\"")
        }
    }

    @Test func theExampleFileIsValidAndHoldsTheDefaults() throws {
        let text = try #require(ConfigRepoFiles.text(EnvExample.fileName))
        let r = configResolve(text)
        #expect(r.issues.isEmpty, "\(r.issues)")
        let c = try #require(r.config)
        for k in ConfigKey.consumed {
            #expect(c.value(forKey: k.name) == k.exampleValue, "\(k.name)")
        }
        #expect(c.passthrough.isEmpty)
    }

    @Test func committedEnvExampleIsGenerated() throws {
        let generated = EnvExample.render()
        if ConfigRepoFiles.updating {
            try FileDescriptor.writeFileAtomically(ConfigRepoFiles.root + "/" + EnvExample.fileName, Array(generated.utf8))
        }
        let committed = try #require(ConfigRepoFiles.text(EnvExample.fileName))
        #expect(Array(committed.utf8) == Array(generated.utf8),
                "env.example differs from the key table; regenerate with SAGEDEV_UPDATE_GENERATED=1 swift test --filter committedEnvExampleIsGenerated")
    }

    @Test func envExampleDocumentsEveryKeyWithItsDefault() throws {
        let text = EnvExample.render()
        for k in ConfigKey.all {
            #expect(text.contains("\n\(k.isPassthroughExample || k.isPattern ? "# " : "")\(k.name)="), "\(k.name)")
            #expect(text.contains("# Default: \(k.documentedDefault)."), "\(k.name)")
        }
    }

    @Test func quotingRoundTrips() {
        for v in ["plain", "", "two words", "a'b", "a\"b", "$HOME", "back\\slash", "multi\nline", "#x", " lead", "x'\"$\\",
                  "tab\there", "ünïcode"] {
            let text = "K=\(EnvExample.quote(v))\n"
            let r = configResolve(configMinimalEnv + text)
            #expect(r.config?.values["K"] == v, "\(v) -> \(text)")
        }
    }
}

/// A temporary directory removed when the value goes away.
final class ConfigTempDirectory {
    let path: String
    init() throws {
        var template = Array("/tmp/sagedev-config-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SystemError.fromErrno("mkdtemp", "/tmp") }
        path = String(cString: p)
    }
    deinit { _ = try? Subprocess.run(["rm", "-rf", path], deadline: .after(seconds: 30)) }
}
