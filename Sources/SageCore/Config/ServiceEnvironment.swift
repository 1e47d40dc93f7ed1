/// One environment variable of a service, with the parts that differ between the runtimes kept symbolic, so that
/// the native spawn and the compose file render the same value (`Config.environment(of:)`).
public struct EnvironmentValue: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case text(String)
        /// The value of a `.env` key that is never written into a generated file (a password, a pass-through
        /// value). Natively it is inserted (percent-encoded inside a URL); the compose file references it.
        case secret(key: String, inURL: Bool)
        /// How the service reaches `service`: 127.0.0.1 (the bind address) and the host port natively, the service
        /// name and the container port under compose.
        case address(ServiceID)
        /// Where the service listens: the bind address natively, 0.0.0.0 in a container.
        case listenAddress
    }
    public var parts: [Part]
    public init(_ parts: [Part]) { self.parts = parts }
    public static func text(_ s: String) -> EnvironmentValue { EnvironmentValue([.text(s)]) }
}

/// How the services of a stack reach one another: on the host's loopback, or on the compose network by name.
public enum ServiceNetwork: Sendable, Equatable { case host, compose }

extension Config {
    /// Names sagedev sets itself; a pass-through key of the same name is never passed on, so that no service
    /// sees a `.env` value where another one sees sagedev's.
    public var environmentNames: Set<String> {
        var names: Set<String> = ["HOST", "PORT", "DATABASE_URL", "VALKEY_URL", "REDIS_URL"]
        for spec in services.specs where spec.isApp || spec.container != nil {
            names.insert(spec.id.envPrefix + "URL")
            names.insert(spec.id.envPrefix + "PUBLIC_URL")
        }
        return names
    }

    /// What a service sees, in one place for both runtimes:
    /// - the pass-through keys (application secrets and other app settings), for apps;
    /// - its own keys (`BACKEND_PORT`, `WORKER_DIR`…), for apps;
    /// - `PORT` (when it has one) and `HOST`, for apps;
    /// - `DATABASE_URL` when it depends on postgres, `VALKEY_URL` and `REDIS_URL` when it depends on valkey;
    /// - `<NAME>_URL` for each app or container it depends on (how it reaches that service) and
    ///   `<NAME>_PUBLIC_URL` (how a browser on this machine does: the bind address and the published port).
    /// Containers get the connection URLs only: an image from elsewhere does not get the application secrets.
    /// Jobs and the data services get nothing (their settings are not an environment).
    public func environment(of s: ServiceID) -> [(name: String, value: EnvironmentValue)] {
        guard let spec = services[s], spec.isApp || spec.container != nil else { return [] }
        var out: [(name: String, value: EnvironmentValue)] = []
        if spec.isApp {
            out.append(("HOST", EnvironmentValue([.listenAddress])))
            if let port = spec.port { out.append(("PORT", .text(String(port)))) }
        }
        for d in spec.dependsOn {
            guard let dep = services[d.id] else { continue }
            switch dep.kind {
            case .postgres:
                out.append(("DATABASE_URL", EnvironmentValue([
                    .text("postgres://\(percentEncode(postgres.user)):"), .secret(key: "POSTGRES_PASSWORD", inURL: true),
                    .text("@"), .address(.postgres), .text("/\(percentEncode(postgres.database))")])))
            case .valkey:
                var url: [EnvironmentValue.Part] = [.text("redis://")]
                if !valkey.password.isEmpty { url += [.text(":"), .secret(key: "VALKEY_PASSWORD", inURL: true), .text("@")] }
                url += [.address(.valkey), .text("/0")]
                out.append(("VALKEY_URL", EnvironmentValue(url)))
                out.append(("REDIS_URL", EnvironmentValue(url)))
            case .app, .container:
                let scheme = dep.isApp || { if case .http = dep.probe { return true }; return false }() ? "http://" : "tcp://"
                if containerPort(of: dep) != nil {
                    out.append((dep.id.envPrefix + "URL", EnvironmentValue([.text(scheme), .address(dep.id)])))
                }
                if let port = dep.port {
                    out.append((dep.id.envPrefix + "PUBLIC_URL", .text("\(scheme)\(urlHost):\(port)")))
                }
            case .job:
                continue
            }
        }
        guard spec.isApp else { return out }
        let reserved = environmentNames
        let set = Set(out.map(\.name))
        for key in ownKeys(of: s) where !reserved.contains(key) && !set.contains(key) {
            out.append((key, .text(values[key] ?? "")))
        }
        let own = Set(out.map(\.name))
        for key in passthrough.keys.sorted() where !reserved.contains(key) && !own.contains(key) {
            out.append((key, EnvironmentValue([.secret(key: key, inURL: false)])))
        }
        return withDevServerVariables(s, out)
    }

    /// The table keys of an app that `.env` sets, sorted: `BACKEND_DIR`, `BACKEND_PORT`…, `WORKER_KIND`….
    func ownKeys(of s: ServiceID) -> [String] {
        let extra = extraServices.contains { $0.id == s }
        return ConfigKey.serviceSuffixes.map { s.envPrefix + $0 }
            .filter { values[$0] != nil && (extra || ConfigKey.named($0) != nil) }.sorted()
    }

    /// The port other services dial on the compose network (an app listens on its host port in its container).
    func containerPort(of spec: ServiceSpec) -> Int? {
        switch spec.kind {
        case .postgres: return ComposeFile.postgresContainerPort
        case .valkey: return ComposeFile.valkeyContainerPort
        case .container(let c): return c.containerPort ?? spec.port
        case .app: return spec.port
        case .job: return nil
        }
    }

    /// A value as one network sees it. Natively secrets are inserted (percent-encoded in a URL); for the compose
    /// file they stay `${VAR:?…}` references (`${VAR:-}` for an empty pass-through value) and `$` is doubled.
    public func render(_ v: EnvironmentValue, for network: ServiceNetwork) -> String {
        var out = ""
        for part in v.parts {
            switch (part, network) {
            case (.text(let t), .host): out += t
            case (.text(let t), .compose): out += ComposeFile.literal(t)
            case (.secret(let key, let inURL), .host):
                let value = secretValue(key)
                out += inURL ? percentEncode(value) : value
            case (.secret(let key, _), .compose):
                out += secretValue(key).isEmpty ? "${\(key):-}" : ComposeFile.required(key)
            case (.address(let id), .host):
                out += "\(urlHost):\(services[id]?.port ?? 0)"
            case (.address(let id), .compose):
                out += "\(id.rawValue):\(services[id].flatMap(containerPort(of:)) ?? 0)"
            case (.listenAddress, .host): out += bindAddress
            case (.listenAddress, .compose): out += "0.0.0.0"
            }
        }
        return out
    }

    private func secretValue(_ key: String) -> String {
        switch key {
        case "POSTGRES_PASSWORD": return postgres.password
        case "VALKEY_PASSWORD": return valkey.password
        default: return passthrough[key] ?? values[key] ?? ""
        }
    }

    /// The environment a native spawn adds to sagedev's own (see `environment(of:)`).
    public func nativeEnvironment(of s: ServiceID) -> [String: String] {
        var env: [String: String] = [:]
        for (name, value) in environment(of: s) { env[name] = render(value, for: .host) }
        return env
    }

    /// What a service depends on of the configuration: for the apps and containers, their environment; for the
    /// data services, every setting that shapes how they run. Comparing two of these tells which services a
    /// `.env` change affects.
    public func serviceEnvironment(_ s: ServiceID) -> [String: String] {
        switch services[s]?.kind {
        case .postgres:
            return ["user": postgres.user, "password": postgres.password, "database": postgres.database,
                    "port": String(postgres.port), "bind": bindAddress, "image": postgres.image,
                    "bin": postgres.binDirectory ?? "", "osUser": postgres.osUser ?? ""]
        case .valkey:
            return ["password": valkey.password, "port": String(valkey.port), "bind": bindAddress,
                    "image": valkey.image, "bin": valkey.binDirectory ?? ""]
        case .app, .container:
            return nativeEnvironment(of: s)
        case .job, nil:
            return [:]
        }
    }

    /// The services whose effective configuration differs between `self` and `other` (the new one), in the new
    /// start order; a service `other` declares and `self` does not counts as affected (it is to be started).
    public func servicesAffected(by other: Config) -> [ServiceID] {
        other.services.serviceIDs.filter {
            services[$0] == nil || serviceEnvironment($0) != other.serviceEnvironment($0) || services[$0] != other.services[$0]
        }
    }
}
