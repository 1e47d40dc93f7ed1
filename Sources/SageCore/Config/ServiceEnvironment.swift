extension Config {
    /// What a service sees of the configuration. For the apps: the pass-through keys (application secrets and
    /// other app settings), their own `BACKEND_*`/`FRONTEND_*` keys, the connection URLs, PORT and HOST — not the
    /// other app's keys, so that changing BACKEND_PORT restarts the backend alone. For the data services: every
    /// setting that shapes how they run. Comparing two of these tells which services a `.env` change affects.
    public func serviceEnvironment(_ s: ServiceID) -> [String: String] {
        guard let spec = services[s] else { return [:] }
        switch spec.kind {
        case .postgres:
            return ["user": postgres.user, "password": postgres.password, "database": postgres.database,
                    "port": String(postgres.port), "bind": bindAddress, "image": postgres.image,
                    "bin": postgres.binDirectory ?? "", "osUser": postgres.osUser ?? ""]
        case .valkey:
            return ["password": valkey.password, "port": String(valkey.port), "bind": bindAddress,
                    "image": valkey.image, "bin": valkey.binDirectory ?? ""]
        case .job:
            return [:]
        case .app, .container:
            let prefix = s.envPrefix
            var env = passthrough
            for (k, v) in values where k.hasPrefix(prefix) { env[k] = v }
            env["DATABASE_URL"] = postgresURL(redacted: false)
            env["VALKEY_URL"] = valkeyURL(redacted: false)
            env["REDIS_URL"] = valkeyURL(redacted: false)
            if let port = spec.port { env["PORT"] = String(port) }
            env["HOST"] = bindAddress
            return env
        }
    }

    /// The services whose effective configuration differs between `self` and `other`.
    public func servicesAffected(by other: Config) -> [ServiceID] {
        services.serviceIDs.filter { serviceEnvironment($0) != other.serviceEnvironment($0) || services[$0] != other.services[$0] }
    }
}
