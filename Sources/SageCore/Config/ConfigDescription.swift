extension Config {
    /// The value in effect for a key of the table, as it would be written in `.env`; nil for a
    /// pass-through key that is not set.
    public func value(forKey key: String) -> String? {
        func app(_ a: App, _ suffix: Substring) -> String? {
            switch suffix {
            case "DIR": return a.directory
            case "DEV_COMMAND": return a.devCommand
            case "INSTALL_COMMAND": return a.installCommand
            case "PORT": return String(a.port)
            case "HEALTH_PATH": return a.healthPath
            case "RELOAD": return a.reloadMode.rawValue
            case "IMAGE": return a.image
            case "FRAMEWORK": return a.framework.rawValue
            default: return nil
            }
        }
        if key.hasPrefix("BACKEND_") { return app(backend, key.dropFirst("BACKEND_".count)) }
        if key.hasPrefix("FRONTEND_") { return app(frontend, key.dropFirst("FRONTEND_".count)) }
        switch key {
        case "SAGEDEV_PROJECT": return projectName
        case "SAGEDEV_RUNTIME": return runtime.rawValue
        case "SAGEDEV_BIND_ADDRESS": return bindAddress
        case "SAGEDEV_PORTS": return portsMode.rawValue
        case "SAGEDEV_PORT_STRIDE": return String(portStride)
        case "POSTGRES_IMAGE": return postgres.image
        case "POSTGRES_USER": return postgres.user
        case "POSTGRES_PASSWORD": return postgres.password
        case "POSTGRES_DB": return postgres.database
        case "POSTGRES_PORT": return String(postgres.port)
        case "VALKEY_IMAGE": return valkey.image
        case "VALKEY_PASSWORD": return valkey.password
        case "VALKEY_PORT": return String(valkey.port)
        case "SAGEDEV_MIGRATIONS_DIR": return migrationsDirectory
        case "SAGEDEV_SEEDS_DIR": return seedsDirectory
        case "SAGEDEV_MIGRATE_COMMAND": return migrateCommand
        case "SAGEDEV_SEED_COMMAND": return seedCommand
        case "SAGEDEV_WATCH_IGNORE": return watchIgnore.joined(separator: ",")
        case "SAGEDEV_WATCH_DEBOUNCE_MS": return String(watchDebounceMilliseconds)
        case "SAGEDEV_RESET_SPARES": return String(resetSpares)
        case "SAGEDEV_POSTGRES_BIN_DIR": return postgres.binDirectory ?? ""
        case "SAGEDEV_VALKEY_BIN_DIR": return valkey.binDirectory ?? ""
        case "SAGEDEV_POSTGRES_OS_USER": return postgres.osUser ?? ""
        case "SAGEDEV_SERVICES": return extraServices.map(\.id.rawValue).joined(separator: ",")
        default: return passthrough[key]
        }
    }

    /// Whether a key's value must never be shown: the passwords and every pass-through value.
    public func isSecret(key: String) -> Bool {
        if let k = ConfigKey.named(key), k.isSecret { return true }
        return passthrough[key] != nil
    }

    /// Every setting in effect: the table's keys in order, then pass-through keys sorted by name.
    /// With `redacted`, secrets read `****` (an empty secret stays empty, which says it is unset).
    public func settings(redacted: Bool = true) -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        for k in ConfigKey.all {
            guard let v = value(forKey: k.name) else { continue }
            out.append((k.name, redacted && isSecret(key: k.name) && !v.isEmpty ? "****" : v))
            // The extra services' keys follow SAGEDEV_SERVICES, as set in .env.
            guard k.name == "SAGEDEV_SERVICES" else { continue }
            for spec in extraServices {
                for suffix in ConfigKey.serviceSuffixes {
                    let key = spec.id.envPrefix + suffix
                    if let v = values[key] { out.append((key, v)) }
                }
            }
        }
        for k in passthrough.keys.sorted() where ConfigKey.named(k) == nil {
            let v = passthrough[k] ?? ""
            out.append((k, redacted && !v.isEmpty ? "****" : v))
        }
        return out
    }

    /// The effective configuration as `KEY=value` lines, secrets as `****`.
    public var redactedDescription: String {
        settings(redacted: true).map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
    }

    /// Secret values long enough to recognise in text.
    var secretValues: [String] {
        var out = [postgres.password, valkey.password]
        out += passthrough.values
        return out.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    /// `text` with every secret value replaced by `****`: a last guard for messages built from values.
    public func redacting(_ text: String) -> String {
        var t = text
        for s in secretValues { t = t.replacing(s, with: "****") }
        return t
    }
}
