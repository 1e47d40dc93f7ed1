/// The extra services of `SAGEDEV_SERVICES=worker,mailpit`: each is one `ServiceSpec` built from its `<NAME>_*`
/// keys, validated like every other key (each issue with its file, line and column).
extension ConfigLoader.Builder {
    /// Names an extra service cannot take: the standard services, and the prefixes of sagedev's, Compose's and
    /// Docker's own keys.
    static let reservedServiceNames: Set<String> = ["postgres", "valkey", "backend", "frontend", "database",
                                                    "sagedev", "compose", "docker"]

    /// The names listed in `SAGEDEV_SERVICES`, each checked; bad and repeated names are reported and left out.
    mutating func declaredServices() -> [ServiceID] {
        let key = "SAGEDEV_SERVICES"
        var out: [ServiceID] = []
        for part in value(key).split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(part).trimmingBlanks()
            if name.isEmpty { continue }
            let scalars = Array(name.unicodeScalars)
            let wellFormed = scalars.count <= 30 && ("a"..."z").contains(scalars[0]) && scalars.last != "-"
                && scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
            if !wellFormed {
                issue(key, "\(key): \"\(name)\" is not a service name; use at most 30 lowercase letters, digits and '-', starting with a letter (for example \(ConfigLoader.projectName(fromDirectory: name)))")
            } else if Self.reservedServiceNames.contains(name) {
                issue(key, "\(key): \"\(name)\" is a name sagedev uses itself; choose another (for example \(name)-2)")
            } else if out.contains(ServiceID(name)) {
                issue(key, "\(key) lists \(name) twice; list each service once")
            } else if let other = out.first(where: { $0.envPrefix == ServiceID(name).envPrefix }) {
                issue(key, "\(key): \(name) and \(other) would share the keys \(ServiceID(name).envPrefix)*; rename one")
            } else {
                out.append(ServiceID(name))
            }
        }
        return out
    }

    /// Every declared service's spec. Keys are read only for a declared service; a key that does not apply to
    /// its kind is a warning.
    mutating func extraServices(_ declared: [ServiceID], runtime: Config.Runtime?) -> [ServiceSpec] {
        let standard: [ServiceID] = [.postgres, .valkey, .database, .backend, .frontend]
        return declared.map { id in
            let p = id.envPrefix
            let kind = choice(p + "KIND", ExtraKind.self) ?? .app
            let port = isSet(p + "PORT") ? self.port(p + "PORT") : nil
            let probe = readiness(p, port: port)
            let dependsOn = dependencies(p, kind: kind, known: standard + declared, own: id)
            let sourceKey = isSet(p + "DEPENDS_ON") ? p + "DEPENDS_ON" : "SAGEDEV_SERVICES"
            let source = ConfigSource(key: sourceKey, file: fromEnvironment(sourceKey) ? nil : file,
                                      line: fromEnvironment(sourceKey) ? nil : document.entry(for: sourceKey)?.line)
            let specKind: ServiceSpec.Kind
            switch kind {
            case .app:
                for s in ["CONTAINER_PORT", "COMMAND"] { ignored(p + s, for: id, kind: "an app") }
                let dir = path(p + "DIR")
                if dir.isEmpty { issue(p + "DIR", "\(p)DIR must name the source directory of \(id) (relative to the project directory)") }
                var image = image(p + "IMAGE")
                if image.isEmpty { image = "node:20-alpine" }
                specKind = .app(AppSpec(directory: dir, devCommand: value(p + "DEV_COMMAND"),
                                        installCommand: value(p + "INSTALL_COMMAND"),
                                        reload: choice(p + "RELOAD", Config.ReloadMode.self) ?? .self, image: image,
                                        framework: choice(p + "FRAMEWORK", DevServerFramework.self) ?? .auto))
            case .container:
                for s in ["DIR", "DEV_COMMAND", "INSTALL_COMMAND", "RELOAD", "FRAMEWORK"] { ignored(p + s, for: id, kind: "a container") }
                let image = image(p + "IMAGE")
                if image.isEmpty { issue(p + "IMAGE", "\(p)IMAGE must name the image \(id) runs (\(p)KIND=container)") }
                let containerPort = isSet(p + "CONTAINER_PORT") ? self.port(p + "CONTAINER_PORT") : port
                specKind = .container(ContainerSpec(image: image, command: value(p + "COMMAND"), containerPort: containerPort))
                if runtime == .native {
                    issue(p + "KIND", "\(id) is a container service (\(p)KIND=container), which only the compose runtime runs, and SAGEDEV_RUNTIME is native; set SAGEDEV_RUNTIME=compose (or auto, with a Docker engine running), or make \(id) an app with \(p)KIND=app and \(p)DIR")
                }
            }
            return ServiceSpec(id: id, kind: specKind, dependsOn: dependsOn, port: port, portKey: port == nil ? nil : p + "PORT",
                               probe: probe, teardown: TeardownPolicy(target: .group, graceSeconds: 5), source: source)
        }
    }

    enum ExtraKind: String, CaseIterable { case app, container }

    /// Set to a value that is not empty (an empty value means the key's default, here: none).
    func isSet(_ key: String) -> Bool { !(raw(key) ?? "").isEmpty }

    /// `<NAME>_HEALTH` (tcp or http:/path) or `<NAME>_HEALTH_PATH`; without a port, "alive for 1 s".
    mutating func readiness(_ p: String, port: Int?) -> ProbeSpec {
        let healthKey = p + "HEALTH", pathKey = p + "HEALTH_PATH"
        let health = raw(healthKey) ?? "", path = raw(pathKey) ?? ""
        if !health.isEmpty && !path.isEmpty {
            issue(healthKey, "\(healthKey) and \(pathKey) are both set; keep one (\(pathKey)=/p is short for \(healthKey)=http:/p)")
        }
        var probe: ProbeSpec = .tcp
        if !path.isEmpty {
            probe = .http(path: healthPath(pathKey))
        } else if health == "tcp" || health.isEmpty {
            probe = .tcp
        } else if health.hasPrefix("http:") {
            let p = String(health.dropFirst(5))
            if !p.hasPrefix("/") || p.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 }) {
                issue(healthKey, "\(healthKey) must be tcp or http: and a URL path starting with '/', such as http:/health, not \"\(health)\"")
            }
            probe = .http(path: p)
        } else {
            issue(healthKey, "\(healthKey) must be tcp or http: and a path, such as http:/health, not \"\(health)\"")
        }
        guard port != nil else {
            if !health.isEmpty || !path.isEmpty {
                issue(health.isEmpty ? pathKey : healthKey, "\(health.isEmpty ? pathKey : healthKey) needs \(p)PORT: readiness is checked on that port (without one, a worker is ready once it has run for 1 s)")
            }
            return .processAlive(seconds: 1)
        }
        return probe
    }

    /// `<NAME>_DEPENDS_ON`, each name checked against the stack's services; `none` for no dependency. The database
    /// step is waited on until it completed, every other service until it is ready.
    mutating func dependencies(_ p: String, kind: ExtraKind, known: [ServiceID], own: ServiceID) -> [Dependency] {
        let key = p + "DEPENDS_ON"
        let text = value(key)
        let names: [String]
        if text.isEmpty {
            names = kind == .app ? ["postgres", "valkey", "database"] : []
        } else if text.trimmingBlanks() == "none" {
            names = []
        } else {
            names = text.split(separator: ",").map { String($0).trimmingBlanks() }.filter { !$0.isEmpty }
        }
        var out: [Dependency] = []
        for n in names {
            let id = ServiceID(n)
            guard known.contains(id) else {
                let hint = Suggestion.closest(to: n, among: known.map(\.rawValue)).map { "; did you mean \($0)?" } ?? ""
                issue(key, "\(key) names \"\(n)\", which is not a service\(hint) (the services are \(known.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            if out.contains(where: { $0.id == id }) { continue }
            out.append(Dependency(id, id == .database ? .completedSuccessfully : .healthy))
        }
        return out
    }

    mutating func ignored(_ key: String, for id: ServiceID, kind: String) {
        guard let v = raw(key), !v.isEmpty else { return }
        issue(key, "\(key) is ignored: \(id) is \(kind) (\(id.envPrefix)KIND)", severity: .warning, atKey: true)
    }

    /// Cycles in the graph, as one issue naming every `<NAME>_DEPENDS_ON` key on the cycle. Unknown names were
    /// reported already, with a suggestion, and are not in the specs.
    mutating func checkGraph(_ specs: [ServiceSpec]) {
        do { _ = try ServiceGraph.build(specs) } catch {
            for problem in error.list {
                guard case .cycle(let ids, let sources) = problem else { continue }
                let keys = sources.map(\.key)
                let path = (ids + [ids[0]]).map(\.rawValue).joined(separator: " → ")
                let message = ids.count == 1
                    ? "\(keys.first ?? ids[0].envPrefix + "DEPENDS_ON") makes \(ids[0]) depend on itself; remove \(ids[0]) from it"
                    : "\(keys.joined(separator: " and ")) form a cycle (\(path)), so none of them could ever start; remove one of these dependencies"
                issue(keys.first ?? "SAGEDEV_SERVICES", message)
            }
        }
    }
}

extension String {
    fileprivate func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
