import Testing
@testable import SageCore
import SageSystem

func composeTestConfig(_ extra: String = "", env: [String: String] = [:]) throws -> Config {
    let r = configResolve(configMinimalEnv + extra, env: env)
    guard let c = r.config else { throw ConfigError(.invalid, issues: r.issues) }
    return c
}

/// The lines of `text` under `key:` inside the block of service `service` (a shallow YAML reader for tests).
func composeTestPublishedPorts(_ yaml: String) -> [String] {
    var out: [String] = []
    var inPorts = false
    for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasSuffix("ports:") { inPorts = true; continue }
        if inPorts, line.trimmingPrefix(while: { $0 == " " }).hasPrefix("- ") {
            out.append(String(line.trimmingPrefix(while: { $0 == " " }).dropFirst(2)))
            continue
        }
        inPorts = false
    }
    return out
}

@Suite("Compose")
struct ComposeTests {
    @Test func outputIsByteStable() throws {
        let a = ComposeFile.generate(try composeTestConfig("ANTHROPIC_API_KEY=k1\nZED=z\nALPHA=a\nMIDDLE=m\n"))
        let b = ComposeFile.generate(try composeTestConfig("MIDDLE=m\nALPHA=a\nZED=z\nANTHROPIC_API_KEY=k1\n"))
        #expect(a == b)
        #expect(a == ComposeFile.generate(try composeTestConfig("ANTHROPIC_API_KEY=k1\nZED=z\nALPHA=a\nMIDDLE=m\n")))
        // Independent of where the project lives.
        let here = configResolve(configMinimalEnv + "SAGEDEV_PROJECT=p\n", dir: "/a/b").config
        let there = configResolve(configMinimalEnv + "SAGEDEV_PROJECT=p\n", dir: "/elsewhere/deeper/dir").config
        #expect(here.map(ComposeFile.generate) == there.map(ComposeFile.generate))
    }

    @Test func currentConventions() throws {
        let y = ComposeFile.generate(try composeTestConfig())
        #expect(y.contains("\nname: my-app\n"))
        #expect(!y.contains("version:"))
        #expect(y.contains("\nservices:\n  postgres:\n"))
        #expect(y.contains("\n  valkey:\n") && y.contains("\n  backend:\n") && y.contains("\n  frontend:\n"))
        #expect(y.contains("\nnetworks:\n  sage-network: {}\n"))
        #expect(y.contains("\nvolumes:\n  postgres-data: {}\n  valkey-data: {}\n"))
        #expect(y.contains("      - postgres-data:/var/lib/postgresql\n"))
        #expect(y.contains("    image: postgres:18-alpine\n"))
        #expect(y.contains("    image: valkey/valkey:8-alpine\n"))
        #expect(y.contains("test: [\"CMD\", \"pg_isready\", \"-h\", \"127.0.0.1\", \"-p\", \"5432\", \"-U\", \"sage\", \"-d\", \"sage\"]"))
        #expect(y.occurrences(of: "start_period:") == 4 && y.occurrences(of: "start_interval:") == 4)
        #expect(y.contains("valkey-cli -h 127.0.0.1 -p 6379 ping | grep -qx PONG"))
        #expect(y.contains("command: [\"valkey-server\", \"--appendonly\", \"yes\", \"--requirepass\", \"${VALKEY_PASSWORD:?VALKEY_PASSWORD must be set in .env}\"]"))
        #expect(y.contains("""
                  dockerfile: backend.Dockerfile.dev
                  args:
                    BASE_IMAGE: node:20-alpine
            """))
        #expect(y.contains("""
                depends_on:
                  postgres:
                    condition: service_healthy
                  valkey:
                    condition: service_healthy
            """))
        #expect(y.contains("""
                depends_on:
                  backend:
                    condition: service_healthy
            """))
        #expect(y.contains("      - type: bind\n        source: \"../apps/backend\"\n        target: /app\n"))
        #expect(y.contains("      - type: volume\n        target: /app/node_modules\n"))
        #expect(y.contains("DATABASE_URL: \"postgres://sage:${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set in .env}@postgres:5432/sage\""))
        #expect(y.contains("VALKEY_URL: \"redis://:${VALKEY_PASSWORD:?VALKEY_PASSWORD must be set in .env}@valkey:6379/0\""))
        #expect(y.contains("REDIS_URL: \"redis://:${VALKEY_PASSWORD:?"))
        #expect(y.contains("PORT: \"3000\"") && y.contains("PORT: \"5173\""))
        #expect(y.contains("\"http://127.0.0.1:3000/health\"]") && y.contains("\"http://127.0.0.1:5173/\"]"))
    }

    @Test func noSecretAppearsLiterally() throws {
        let secrets = ["Pg-Secret-9f3a", "Vk-Secret-77c1", "sk-ant-SECRET-123", "tok_live_abc"]
        let c = try composeTestConfig("ANTHROPIC_API_KEY=sk-ant-SECRET-123\nAPP_TOKEN=tok_live_abc\nEMPTY_ONE=\n",
                           env: ["POSTGRES_PASSWORD": secrets[0], "VALKEY_PASSWORD": secrets[1]])
        #expect(c.postgres.password == secrets[0])
        let y = ComposeFile.generate(c)
        for s in secrets { #expect(!y.contains(s), "\(s)") }
        #expect(y.occurrences(of: "ANTHROPIC_API_KEY: \"${ANTHROPIC_API_KEY:?ANTHROPIC_API_KEY must be set in .env}\"") == 2)
        #expect(y.occurrences(of: "APP_TOKEN: \"${APP_TOKEN:?") == 2)
        #expect(y.occurrences(of: "EMPTY_ONE: \"${EMPTY_ONE:-}\"") == 2)
        #expect(y.occurrences(of: "POSTGRES_PASSWORD: \"${POSTGRES_PASSWORD:?") == 1)
    }

    @Test func everyPublishedPortBindsLoopbackByDefault() throws {
        let y = ComposeFile.generate(try composeTestConfig())
        let ports = composeTestPublishedPorts(y)
        #expect(ports == ["\"127.0.0.1:5432:5432\"", "\"127.0.0.1:6379:6379\"", "\"127.0.0.1:3000:3000\"", "\"127.0.0.1:5173:5173\""])
        #expect(!y.contains("0.0.0.0:"))
    }

    @Test func portsFollowTheConfiguration() throws {
        let y = ComposeFile.generate(try composeTestConfig("SAGEDEV_BIND_ADDRESS=::1\nPOSTGRES_PORT=15432\nBACKEND_PORT=4000\n"))
        #expect(composeTestPublishedPorts(y) == ["\"[::1]:15432:5432\"", "\"[::1]:6379:6379\"", "\"[::1]:4000:4000\"", "\"[::1]:5173:5173\""])
        #expect(y.contains("BACKEND_URL: http://backend:4000"))
    }

    @Test func literalDollarsAreEscapedForCompose() throws {
        let y = ComposeFile.generate(try composeTestConfig("BACKEND_DEV_COMMAND='echo $HOME && node ${X:-y} \"q\" #c'\n"))
        #expect(y.contains("SAGEDEV_DEV_COMMAND: \"echo $$HOME && node $${X:-y} \\\"q\\\" #c\""))
    }

    @Test func valkeyWithoutPassword() throws {
        let c = try composeTestConfig(env: ["VALKEY_PASSWORD": ""])
        let y = ComposeFile.generate(c)
        #expect(!y.contains("requirepass"))
        #expect(!y.contains("REDISCLI_AUTH"))
        #expect(!y.contains("VALKEY_PASSWORD"))
        #expect(y.contains("VALKEY_URL: redis://valkey:6379/0"))
        #expect(y.contains("command: [\"valkey-server\", \"--appendonly\", \"yes\"]"))
    }

    @Test func passthroughDoesNotShadowGeneratedNames() throws {
        let y = ComposeFile.generate(try composeTestConfig("DATABASE_URL=postgres://elsewhere\nPORT=1\n"))
        #expect(y.occurrences(of: "DATABASE_URL:") == 1)
        #expect(!y.contains("${PORT"))
    }

    @Test func sourcePaths() {
        #expect(ComposeFile.sourcePath("apps/backend") == "../apps/backend")
        #expect(ComposeFile.sourcePath("./apps/backend/") == "../apps/backend")
        #expect(ComposeFile.sourcePath(".") == "..")
        #expect(ComposeFile.sourcePath("/abs/dir") == "/abs/dir")
    }

    @Test func committedComposeFileIsTheOutputForEnvExample() throws {
        let example = try #require(ConfigRepoFiles.text(EnvExample.fileName))
        let c = try #require(configResolve(example).config)
        let generated = ComposeFile.generate(c)
        if ConfigRepoFiles.updating {
            try FileDescriptor.writeFileAtomically(ConfigRepoFiles.root + "/compose/compose.yaml", Array(generated.utf8))
            for s in [ServiceID.backend, .frontend] {
                try FileDescriptor.writeFileAtomically(ConfigRepoFiles.root + "/compose/" + ComposeFile.dockerfileName(s),
                                                       Array(ComposeFile.dockerfile(for: s).utf8))
            }
        }
        let committed = try #require(ConfigRepoFiles.text("compose/compose.yaml"))
        #expect(Array(committed.utf8) == Array(generated.utf8),
                "compose/compose.yaml differs; regenerate with SAGEDEV_UPDATE_GENERATED=1 swift test --filter committedComposeFileIsTheOutputForEnvExample")
        for s in [ServiceID.backend, .frontend] {
            #expect(ConfigRepoFiles.text("compose/" + ComposeFile.dockerfileName(s)) == ComposeFile.dockerfile(for: s))
        }
    }

    @Test func dockerfiles() {
        let d = ComposeFile.dockerfile(for: .backend)
        #expect(d.contains("ARG BASE_IMAGE=node:20-alpine\nFROM ${BASE_IMAGE}\nWORKDIR /app\n"))
        #expect(d.contains("exec /bin/sh -c \\\"$SAGEDEV_DEV_COMMAND\\\""))
        #expect(!d.contains("COPY"))
    }

    @Test func composeArguments() throws {
        let c = try composeTestConfig()
        #expect(ComposeFile.composeArguments(config: c, composeFile: "/p/.sagedev/compose.yaml")
                == ["compose", "--project-name", "my-app", "--env-file", "/projects/my-app/.env", "--file", "/p/.sagedev/compose.yaml"])
    }
}

@Suite("YAML")
struct YAMLTests {
    @Test func plainOrQuoted() {
        let plain = ["postgres", "node:20-alpine", "valkey/valkey:8-alpine", "/app/node_modules", "a.b_c-d", "user@host",
                     "http://backend:3000", "postgres-data:/var/lib/postgresql", "K=V", "Abc"]
        for s in plain { #expect(YAML.scalar(s) == s, "\(s)") }
        let quoted = ["", "3000", "1.5", ".5", ".inf", "0x1F", "true", "False", "yes", "NO", "on", "Off", "y", "n", "null",
                      "~", "-", "- x", "a: b", "a:", "#c", "a #c", "*ref", "&anchor", "!tag", "@x", "`x", "'q'", "\"q\"",
                      "[a]", "{a}", "a,b", "a b", " lead", "trail ", "%x", "|", ">", "?x", "$x", "12:30", "2024-01-01",
                      "line\nbreak", "tab\t", "é"]
        for s in quoted { #expect(YAML.scalar(s).hasPrefix("\""), "\(s)") }
    }

    @Test func doubleQuotedEscapes() {
        #expect(YAML.doubleQuoted("a\"b\\c\nd\te\r") == "\"a\\\"b\\\\c\\nd\\te\\r\"")
        #expect(YAML.doubleQuoted("\u{01}\u{7F}\u{85}\u{2028}") == "\"\\x01\\x7F\\x85\\u2028\"")
        #expect(YAML.doubleQuoted("ünï") == "\"ünï\"")
    }

    @Test func blockLayout() {
        let doc = YAMLNode.mapping([
            ("a", .string("x")),
            ("empty", .mapping([])),
            ("list", .sequence([.string("one"), .quoted("2"), .mapping([("k", .integer(1)), ("l", .bool(true))])])),
            ("nested", .mapping([("inner", .sequence([.string("z")])), ("flow", .flowSequence(["CMD", "a b"]))])),
            ("none", .sequence([])),
        ])
        #expect(YAML.render(doc) == """
            a: x
            empty: {}
            list:
              - one
              - "2"
              - k: 1
                l: true
            nested:
              inner:
                - z
              flow: ["CMD", "a b"]
            none: []

            """)
    }
}

extension String {
    func occurrences(of needle: String) -> Int {
        var n = 0
        var rest = Substring(self)
        while let r = rest.firstRange(of: needle) { n += 1; rest = rest[r.upperBound...] }
        return n
    }
}
