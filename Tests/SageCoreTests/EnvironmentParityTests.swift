import Testing
import SageWire
@testable import SageCore

/// The native spawn and the compose file render one environment per service (`Config.environment(of:)`). The only
/// differences allowed are the documented ones: how a service reaches another (127.0.0.1 and the host port natively,
/// the service name and the container port under compose), where it listens (HOST: the bind address natively,
/// 0.0.0.0 in a container), and the dev image's own SAGEDEV_DEV_COMMAND and SAGEDEV_INSTALL_COMMAND.
@Suite("Environment parity")
struct EnvironmentParityTests {
    static let text = """
        POSTGRES_PASSWORD=pg-pw-1
        VALKEY_PASSWORD=vk-pw-2
        POSTGRES_PORT=15432
        VALKEY_PORT=16379
        BACKEND_PORT=4000
        ANTHROPIC_API_KEY=sk-ant-3
        EMPTY_ONE=
        SAGEDEV_SERVICES=worker,api2,mailpit
        WORKER_DIR=apps/worker
        WORKER_DEV_COMMAND=node worker.js
        API2_DIR=apps/api2
        API2_PORT=4100
        API2_HEALTH_PATH=/health
        API2_DEPENDS_ON=postgres,backend,mailpit,worker
        MAILPIT_KIND=container
        MAILPIT_IMAGE=busybox
        MAILPIT_PORT=18025
        MAILPIT_CONTAINER_PORT=8025
        MAILPIT_DEPENDS_ON=valkey

        """

    func config() throws -> Config {
        let r = ConfigLoader.resolve(text: Self.text, file: "/p/.env", projectDirectory: "/p", environment: [:])
        return try #require(r.config, "\(r.issues)")
    }

    /// What the compose file gives `spec`, as Compose resolves it from .env.
    func composeEnvironment(_ spec: ServiceSpec, _ c: Config) throws -> [String: String] {
        var out: [String: String] = [:]
        for (name, node) in ComposeFile.environment(spec, c) {
            guard case .string(let template) = node else { Issue.record("\(name) is not a string"); continue }
            out[name] = try Interpolation.interpolate(template) { c.values[$0] }
        }
        return out
    }

    /// The documented host-name difference, undone: `name:containerPort` → `127.0.0.1:hostPort`.
    func asNative(_ value: String, _ c: Config) -> String {
        var v = value
        for spec in c.services.specs {
            guard let inside = c.containerPort(of: spec), let host = spec.port else { continue }
            v = v.replacing("\(spec.id.rawValue):\(inside)", with: "\(c.urlHost):\(host)")
        }
        return v
    }

    @Test func nativeAndComposeEnvironmentsDifferOnlyInTheDocumentedHostNames() throws {
        let c = try config()
        let checked = c.services.specs.filter { $0.isApp || $0.container != nil }
        #expect(checked.map(\.id) == ["backend", "frontend", "worker", "mailpit", "api2"])
        for spec in checked {
            let native = c.nativeEnvironment(of: spec.id)
            var compose = try composeEnvironment(spec, c)
            if spec.isApp {
                #expect(compose.removeValue(forKey: "SAGEDEV_DEV_COMMAND") == spec.app?.devCommand)
                #expect(compose.removeValue(forKey: "SAGEDEV_INSTALL_COMMAND") == spec.app?.installCommand)
                #expect(compose.removeValue(forKey: "HOST") == "0.0.0.0", "\(spec.id)")
                #expect(native["HOST"] == c.bindAddress, "\(spec.id)")
            }
            #expect(Set(native.keys.filter { $0 != "HOST" }) == Set(compose.keys), "\(spec.id): native \(native.keys.sorted()) vs compose \(compose.keys.sorted())")
            for (name, value) in compose {
                #expect(asNative(value, c) == native[name], "\(spec.id) \(name): compose \(value) vs native \(native[name] ?? "unset")")
            }
        }
    }

    @Test func eachServiceGetsTheURLsOfWhatItDependsOnOnly() throws {
        let c = try config()
        let worker = c.nativeEnvironment(of: "worker")
        #expect(worker["DATABASE_URL"] == "postgres://sage:pg-pw-1@127.0.0.1:15432/sage")
        #expect(worker["VALKEY_URL"] == "redis://:vk-pw-2@127.0.0.1:16379/0")
        #expect(worker["PORT"] == nil && worker["BACKEND_URL"] == nil)
        #expect(worker["WORKER_DEV_COMMAND"] == "node worker.js")
        #expect(worker["ANTHROPIC_API_KEY"] == "sk-ant-3")

        let api2 = try composeEnvironment(try #require(c.services["api2"]), c)
        #expect(api2["BACKEND_URL"] == "http://backend:4000")
        #expect(api2["BACKEND_PUBLIC_URL"] == "http://127.0.0.1:4000")
        #expect(api2["MAILPIT_URL"] == "tcp://mailpit:8025")
        #expect(api2["MAILPIT_PUBLIC_URL"] == "tcp://127.0.0.1:18025")
        #expect(api2["WORKER_URL"] == nil, "a worker without a port has no URL")
        #expect(api2["DATABASE_URL"] == "postgres://sage:pg-pw-1@postgres:5432/sage")
        #expect(api2["VALKEY_URL"] == nil)

        let mailpit = c.nativeEnvironment(of: "mailpit")
        #expect(mailpit.keys.sorted() == ["REDIS_URL", "VALKEY_URL"], "a container gets no application secrets")
    }

    @Test func theComposeFileNeverHoldsASecret() throws {
        let y = ComposeFile.generate(try config())
        for secret in ["pg-pw-1", "vk-pw-2", "sk-ant-3"] { #expect(!y.contains(secret), "\(secret)") }
        #expect(y.contains("EMPTY_ONE: \"${EMPTY_ONE:-}\""))
    }
}
