import Testing
@testable import SageCore

@Suite struct ServiceGraphTests {
    func spec(_ id: ServiceID, _ deps: [ServiceID] = [], key: String? = nil) -> ServiceSpec {
        ServiceSpec(id: id, kind: .app(AppSpec(directory: ".", devCommand: "true")),
                    dependsOn: deps.map { Dependency($0) }, probe: .processAlive(seconds: 1),
                    source: key.map { ConfigSource(key: $0, file: ".env", line: 3) })
    }

    func problems(_ build: () throws -> ServiceGraph) -> [ServiceGraph.Problem] {
        do { _ = try build(); return [] } catch { return (error as? ServiceGraph.Problems)?.list ?? [] }
    }

    @Test func sortsDependenciesFirstAndKeepsDeclarationOrderForTies() throws {
        let g = try ServiceGraph.build([spec("frontend", ["backend"]), spec("postgres"), spec("backend", ["postgres", "valkey"]),
                                        spec("valkey"), spec("worker", ["postgres"])])
        #expect(g.ids == ["postgres", "valkey", "backend", "frontend", "worker"])
        #expect(g.stopOrder == ["worker", "frontend", "backend", "valkey", "postgres"])
    }

    @Test func dependentsAreTransitive() throws {
        let g = try ServiceGraph.build([spec("postgres"), spec("database", ["postgres"]), spec("backend", ["database"]),
                                        spec("frontend", ["backend"]), spec("valkey")])
        #expect(g.dependents(of: "postgres") == ["database", "backend", "frontend"])
        #expect(g.dependencies(of: "frontend") == ["postgres", "database", "backend"])
        #expect(g.dependents(of: "valkey").isEmpty)
    }

    @Test func reportsACycleWithEveryMember() {
        let problems = problems {
            try ServiceGraph.build([spec("postgres"), spec("worker", ["mailer"], key: "WORKER_DEPENDS_ON"),
                                    spec("mailer", ["worker"], key: "MAILER_DEPENDS_ON")])
        }
        guard case .cycle(let ids, let sources) = problems.first else { Issue.record("expected a cycle, got \(problems)"); return }
        #expect(Set(ids) == ["worker", "mailer"])
        #expect(Set(sources.map(\.key)) == ["WORKER_DEPENDS_ON", "MAILER_DEPENDS_ON"])
    }

    @Test func reportsAnUnknownDependency() {
        let found = problems { try ServiceGraph.build([spec("worker", ["mailpit"], key: "WORKER_DEPENDS_ON")]) }
        #expect(found == [.unknownDependency(service: "worker", dependency: "mailpit",
                                             source: ConfigSource(key: "WORKER_DEPENDS_ON", file: ".env", line: 3))])
    }

    @Test func reportsADuplicate() {
        #expect(problems { try ServiceGraph.build([spec("worker"), spec("worker")]) } == [.duplicate("worker", source: nil)])
    }

    @Test func envPrefixUpperCasesAndReplacesDashes() {
        #expect(ServiceID("mail-pit").envPrefix == "MAIL_PIT_")
    }

    @Test func theStandardStackRunsTheDatabaseJobBeforeTheApps() throws {
        let c = try #require(ConfigLoader.resolve(text: "POSTGRES_PASSWORD=pw\nVALKEY_PASSWORD=vk\n", file: "/p/.env",
                                                  projectDirectory: "/p", environment: [:]).config)
        #expect(c.services.ids == ["postgres", "valkey", "database", "backend", "frontend"])
        #expect(c.services.serviceIDs == ["postgres", "valkey", "backend", "frontend"])
        #expect(c.services["database"]?.dependsOn == [Dependency(.postgres)])
        #expect(c.services["backend"]?.dependsOn == [Dependency(.postgres), Dependency(.valkey), Dependency(.database, .completedSuccessfully)])
        #expect(c.services["frontend"]?.dependsOn == [Dependency(.backend)])
        #expect(c.services["backend"]?.portKey == "BACKEND_PORT")
        #expect(c.services["backend"]?.probe == .http(path: "/health"))
    }

    @Test func theGraphFollowsTheValuesItCameFrom() throws {
        var c = try #require(ConfigLoader.resolve(text: "POSTGRES_PASSWORD=pw\nVALKEY_PASSWORD=vk\n", file: "/p/.env",
                                                  projectDirectory: "/p", environment: [:]).config)
        c.backend.port = 4100
        #expect(c.port(of: .backend) == 4100)
    }
}
