/// The services every Sage stack has, as specs built from the configuration's values: the data services, the
/// database step (migrate, seed, reset template) as a job, and the two apps.
extension Config {
    static func standardServices(postgres: Postgres, valkey: Valkey, backend: App, frontend: App) -> [ServiceSpec] {
        [
            ServiceSpec(id: .postgres, kind: .postgres, port: postgres.port, portKey: "POSTGRES_PORT", probe: .postgres,
                        // The postmaster alone gets SIGINT (fast shutdown); signalling its group would hit the backends.
                        teardown: TeardownPolicy(target: .leader, graceSeconds: 15)),
            ServiceSpec(id: .valkey, kind: .valkey, port: valkey.port, portKey: "VALKEY_PORT", probe: .resp,
                        teardown: TeardownPolicy(target: .group, graceSeconds: 5)),
            ServiceSpec(id: .database, kind: .job(JobSpec(.database)), dependsOn: [Dependency(.postgres)], probe: .completed),
            appSpec(.backend, backend, dependsOn: [Dependency(.postgres), Dependency(.valkey),
                                                   Dependency(.database, .completedSuccessfully)]),
            appSpec(.frontend, frontend, dependsOn: [Dependency(.backend)]),
        ]
    }

    static func appSpec(_ id: ServiceID, _ a: App, dependsOn: [Dependency]) -> ServiceSpec {
        ServiceSpec(id: id, kind: .app(AppSpec(directory: a.directory, devCommand: a.devCommand, installCommand: a.installCommand,
                                               reload: a.reloadMode, image: a.image, framework: a.framework)),
                    dependsOn: dependsOn, port: a.port, portKey: id.envPrefix + "PORT", probe: .http(path: a.healthPath),
                    teardown: TeardownPolicy(target: .group, graceSeconds: 5))
    }

    /// The graph of the standard services and the extra ones. The loader has already reported what would make
    /// the extra services unsortable (cycles, unknown or duplicate names); a value that still cannot be sorted
    /// (built by hand) keeps the standard services alone, which are declared in start order.
    static func graph(standard: [ServiceSpec], extra: [ServiceSpec]) -> ServiceGraph {
        (try? ServiceGraph.build(standard + extra)) ?? ServiceGraph(sorted: standard)
    }
}

extension ServiceID {
    /// The standard services that run (the database job aside), for commands that have no configuration to read.
    public static let standard: [ServiceID] = [.postgres, .valkey, .backend, .frontend]
}
