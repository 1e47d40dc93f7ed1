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

    @Test func backendPortChangeAffectsOnlyTheBackend() throws {
        let a = try config(base), b = try config(base.replacingOccurrences(of: "BACKEND_PORT=3000", with: "BACKEND_PORT=3001"))
        #expect(a.servicesAffected(by: b) == [.backend])
        #expect(b.serviceEnvironment(.backend)["PORT"] == "3001")
    }

    @Test func secretChangeAffectsBothApps() throws {
        let a = try config(base), b = try config(base.replacingOccurrences(of: "sk-1", with: "sk-2"))
        #expect(a.servicesAffected(by: b) == [.backend, .frontend])
    }

    @Test func postgresPasswordChangeAffectsPostgresAndTheAppsThatConnect() throws {
        let a = try config(base), b = try config(base.replacingOccurrences(of: "POSTGRES_PASSWORD=pw", with: "POSTGRES_PASSWORD=pw2"))
        // The apps' DATABASE_URL carries the password, so they restart too.
        #expect(a.servicesAffected(by: b) == [.postgres, .backend, .frontend])
    }

    @Test func unchangedConfigAffectsNothing() throws {
        #expect(try config(base).servicesAffected(by: config(base)).isEmpty)
    }

    @Test func appsSeeTheirOwnKeysAndSecretsButNotTheOtherApps() throws {
        let env = try config(base).serviceEnvironment(.frontend)
        #expect(env["ANTHROPIC_API_KEY"] == "sk-1")
        #expect(env["FRONTEND_PORT"] == "5173")
        #expect(env["BACKEND_PORT"] == nil)
        #expect(env["DATABASE_URL"] == "postgres://sage:pw@127.0.0.1:5432/sage")
    }
}
