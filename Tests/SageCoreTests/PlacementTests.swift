import Testing
@testable import SageCore

@Suite struct PlacementTests {
    let slot2 = Placement(slot: 2, stride: 10, project: "sage-abc123")

    func placed(_ extra: String = "", _ p: Placement) throws -> Config {
        let r = ConfigLoader.resolve(text: configMinimalEnv + extra, file: "/p/.env", projectDirectory: "/p", environment: [:], placement: p)
        #expect(r.errors.isEmpty, "\(r.issues)")
        return try #require(r.config)
    }

    @Test func aSlotMovesEveryServicePortAndTheProjectName() throws {
        let c = try placed("SAGEDEV_PROJECT=sage\n", slot2)
        #expect(c.slotPorts.map(\.port) == [5452, 6399, 3020, 5193])
        #expect(c.projectName == "sage-abc123")
        #expect(c.placement == slot2)
        #expect(c.configuredSlotPorts.map(\.port) == [5432, 6379, 3000, 5173])
    }

    @Test func theAppsGetTheSlotsPortsAndURLs() throws {
        let c = try placed("", slot2)
        let env = c.serviceEnvironment(.backend)
        #expect(env["PORT"] == "3020")
        #expect(env["BACKEND_PORT"] == "3020")
        #expect(env["DATABASE_URL"]?.contains("@127.0.0.1:5452/") == true)
        #expect(env["VALKEY_URL"]?.contains(":6399/") == true)
        #expect(c.serviceEnvironment(.frontend)["PORT"] == "5193")
    }

    @Test func aValueDerivedFromAPortFollowsTheSlot() throws {
        let c = try placed("BACKEND_PORT=4000\nAPI_URL=http://localhost:${BACKEND_PORT}/api\n", slot2)
        #expect(c.passthrough["API_URL"] == "http://localhost:4020/api")
        #expect(c.serviceEnvironment(.frontend)["API_URL"] == "http://localhost:4020/api")
    }

    @Test func theConfiguredPlacementChangesNothing() throws {
        let r = ConfigLoader.resolve(text: configMinimalEnv, file: "/p/.env", projectDirectory: "/p", environment: [:])
        #expect(try placed("", .configured) == r.config)
        #expect(r.config?.placement == .configured)
    }

    @Test func portsModeAndStrideAreValidated() {
        let r = ConfigLoader.resolve(text: configMinimalEnv + "SAGEDEV_PORTS=fixd\nSAGEDEV_PORT_STRIDE=0\n", file: "/p/.env",
                                     projectDirectory: "/p", environment: [:])
        #expect(r.config == nil)
        #expect(r.errors.contains { $0.key == "SAGEDEV_PORTS" && $0.message.contains("did you mean fixed?") })
        #expect(r.errors.contains { $0.key == "SAGEDEV_PORT_STRIDE" })
    }

    @Test func urlPasswordsAreRedacted() {
        #expect(redactingURLPassword("postgres://sage:p%40ss@127.0.0.1:5442/sage") == "postgres://sage:****@127.0.0.1:5442/sage")
        #expect(redactingURLPassword("redis://:secret@127.0.0.1:6389/0") == "redis://:****@127.0.0.1:6389/0")
        #expect(redactingURLPassword("http://127.0.0.1:3010") == "http://127.0.0.1:3010")
        #expect(redactingURLPassword("http://user@host/a:b@c") == "http://user@host/a:b@c")
    }

    @Test func theConnectionEnvironmentHoldsURLsPortsAndTheProject() throws {
        let c = try placed("ANTHROPIC_API_KEY=sk-ant-x\n", slot2)
        let env = c.connectionEnvironment()
        #expect(env["SAGEDEV_PROJECT"] == "sage-abc123" && env["SAGEDEV_SLOT"] == "2")
        #expect(env["POSTGRES_PORT"] == "5452" && env["FRONTEND_PORT"] == "5193")
        #expect(env["DATABASE_URL"] == c.serviceEnvironment(.backend)["DATABASE_URL"])
        #expect(env["ANTHROPIC_API_KEY"] == nil)
    }
}
