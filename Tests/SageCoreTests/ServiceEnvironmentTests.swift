import Testing
import Foundation
@testable import SageCore

@Suite struct ServiceEnvironmentTests {
    let base = """
    POSTGRES_USER=sage
    POSTGRES_PASSWORD=pw
    POSTGRES_DB=sage
    VALKEY_PASSWORD=vk
    BACKEND_PORT=3000
    FRONTEND_PORT=5173
    ANTHROPIC_API_KEY=sk-1
    """

    func config(_ text: String) throws -> Config {
        try #require(ConfigLoader.resolve(text: text, file: "/p/.env", projectDirectory: "/p", environment: [:]).config)
    }

    @Test func backendPortChangeAffectsTheBackendAndTheFrontendThatCallsIt() throws {
        let a = try config(base), b = try config(base.replacingOccurrences(of: "BACKEND_PORT=3000", with: "BACKEND_PORT=3001"))
        #expect(a.servicesAffected(by: b) == [.backend, .frontend])
        #expect(b.serviceEnvironment(.backend)["PORT"] == "3001")
        #expect(b.serviceEnvironment(.frontend)["BACKEND_URL"] == "http://127.0.0.1:3001")
    }

    @Test func frontendPortChangeAffectsOnlyTheFrontend() throws {
        let a = try config(base), b = try config(base.replacingOccurrences(of: "FRONTEND_PORT=5173", with: "FRONTEND_PORT=5174"))
        #expect(a.servicesAffected(by: b) == [.frontend])
    }

    @Test func secretChangeAffectsBothApps() throws {
        let a = try config(base), b = try config(base.replacingOccurrences(of: "sk-1", with: "sk-2"))
        #expect(a.servicesAffected(by: b) == [.backend, .frontend])
    }

    @Test func postgresPasswordChangeAffectsPostgresAndTheAppsThatConnect() throws {
        let a = try config(base), b = try config(base.replacingOccurrences(of: "POSTGRES_PASSWORD=pw", with: "POSTGRES_PASSWORD=pw2"))
        // The backend's DATABASE_URL carries the password, so it restarts too; the frontend holds no DATABASE_URL.
        #expect(a.servicesAffected(by: b) == [.postgres, .backend])
    }

    @Test func unchangedConfigAffectsNothing() throws {
        #expect(try config(base).servicesAffected(by: config(base)).isEmpty)
    }

    @Test func appsSeeTheirOwnKeysAndSecretsButNotTheOtherApps() throws {
        let env = try config(base).serviceEnvironment(.frontend)
        #expect(env["ANTHROPIC_API_KEY"] == "sk-1")
        #expect(env["FRONTEND_PORT"] == "5173")
        #expect(env["BACKEND_PORT"] == nil)
        #expect(try config(base).serviceEnvironment(.backend)["DATABASE_URL"] == "postgres://sage:pw@127.0.0.1:5432/sage")
    }

    /// Defect: natively the frontend got DATABASE_URL (a secret it should not hold) and no BACKEND_URL.
    @Test func theFrontendGetsTheBackendsURLsAndNoDatabaseURL() throws {
        let env = try config(base).nativeEnvironment(of: .frontend)
        #expect(env["DATABASE_URL"] == nil)
        #expect(env["VALKEY_URL"] == nil && env["REDIS_URL"] == nil)
        #expect(env["BACKEND_URL"] == "http://127.0.0.1:3000")
        #expect(env["BACKEND_PUBLIC_URL"] == "http://127.0.0.1:3000")
    }
}
