/// One `.env` key sagedev understands. `ConfigKey.all` is the single list of them: the loader, the
/// validation, `env.example`, the README's table and `sagedev config` all read it.
public struct ConfigKey: Sendable, Equatable {
    public enum Section: String, Sendable, CaseIterable {
        case project = "Project"
        case postgres = "PostgreSQL 18"
        case valkey = "Valkey 8"
        case backend = "Backend"
        case frontend = "Frontend"
        case services = "Extra services"
        case database = "Migrations and seeds"
        case watch = "File watching"
        case native = "Native runtime"
        case secrets = "Application secrets"
    }

    public enum Requirement: Sendable, Equatable {
        /// Missing or empty takes `defaultValue`.
        case optional
        /// Must be set to a non-empty value.
        case required
        /// Must appear in `.env`; an empty value is allowed and means "off" (VALKEY_PASSWORD).
        case present
    }

    public enum Kind: Sendable, Equatable {
        case text, port, integer(ClosedRange<Int>), choice([String]), path, command, image, address
    }

    public var name: String
    /// What a missing or empty value becomes ("" when the default is "none").
    public var defaultValue: String
    /// How the default reads in documentation when it is derived rather than a constant.
    public var defaultDescription: String?
    /// One line of meaning.
    public var meaning: String
    public var section: Section
    public var kind: Kind
    public var requirement: Requirement
    /// Printed as **** and referenced, never inlined, in generated compose files.
    public var isSecret: Bool
    /// The value env.example carries when it is not the default (placeholders for passwords).
    public var example: String?
    /// A documented application secret that sagedev only passes through; env.example shows it commented out.
    public var isPassthroughExample: Bool

    public init(_ name: String, default defaultValue: String = "", defaultDescription: String? = nil,
                _ meaning: String, section: Section, kind: Kind = .text, requirement: Requirement = .optional,
                secret: Bool = false, example: String? = nil, passthroughExample: Bool = false) {
        self.name = name; self.defaultValue = defaultValue; self.defaultDescription = defaultDescription
        self.meaning = meaning; self.section = section; self.kind = kind; self.requirement = requirement
        self.isSecret = secret; self.example = example; self.isPassthroughExample = passthroughExample
    }

    /// The default as people read it.
    public var documentedDefault: String {
        if let d = defaultDescription { return d }
        if requirement == .required { return "none (required)" }
        return defaultValue.isEmpty ? "empty (none)" : defaultValue
    }

    /// The value env.example assigns.
    public var exampleValue: String { example ?? defaultValue }

    public static func named(_ name: String) -> ConfigKey? { byName[name] }

    /// Keys sagedev reads itself (everything in the table but documented pass-through examples and the
    /// `<NAME>_*` patterns of the extra services).
    public static var consumed: [ConfigKey] { all.filter { !$0.isPassthroughExample && !$0.isPattern } }

    /// How the per-service keys of an extra service are written in the table: `<NAME>_KIND` stands for
    /// `WORKER_KIND` when `SAGEDEV_SERVICES=worker`.
    public static let patternPrefix = "<NAME>_"
    /// A `<NAME>_*` key of the table, documenting one key of every extra service.
    public var isPattern: Bool { name.hasPrefix(ConfigKey.patternPrefix) }
    /// The part after `<NAME>_` (`KIND`), for a pattern key.
    public var patternSuffix: String? { isPattern ? String(name.dropFirst(ConfigKey.patternPrefix.count)) : nil }
    /// The pattern key documenting `suffix` (`DEPENDS_ON` → `<NAME>_DEPENDS_ON`).
    public static func pattern(_ suffix: String) -> ConfigKey? { byName[patternPrefix + suffix] }
    /// Every suffix an extra service's keys take.
    public static var serviceSuffixes: [String] { all.compactMap(\.patternSuffix) }

    static func appKeys(_ prefix: String, _ what: String, section: Section, directory: String, port: Int,
                        healthPath: String) -> [ConfigKey] {
        [
            ConfigKey("\(prefix)_DIR", default: directory,
                      "\(what) source directory, relative to the project directory.", section: section, kind: .path),
            ConfigKey("\(prefix)_DEV_COMMAND", default: "npm run dev",
                      "Command that runs the \(what.lowercased()) dev server (with /bin/sh -c, in \(prefix)_DIR).",
                      section: section, kind: .command),
            ConfigKey("\(prefix)_INSTALL_COMMAND",
                      "Command that installs the \(what.lowercased())'s dependencies before it starts; empty: none.",
                      section: section, kind: .command),
            ConfigKey("\(prefix)_PORT", default: String(port),
                      "Port the \(what.lowercased()) listens on (its PORT), on the host and in its container.",
                      section: section, kind: .port),
            ConfigKey("\(prefix)_HEALTH_PATH", default: healthPath,
                      "HTTP path that answers 2xx or 3xx once the \(what.lowercased()) is up.", section: section),
            ConfigKey("\(prefix)_RELOAD", default: "self",
                      "self: the dev server reloads itself on changes; restart: sagedev restarts it.",
                      section: section, kind: .choice(["self", "restart"])),
            ConfigKey("\(prefix)_FRAMEWORK", default: "auto",
                      "Dev server adapter: auto (from the dev command and package.json), vite, esbuild, nest or none; adds the flags and variables it needs.",
                      section: section, kind: .choice(DevServerFramework.allCases.map(\.rawValue))),
            ConfigKey("\(prefix)_IMAGE", default: "node:20-alpine",
                      "Base image of compose/\(prefix.lowercased()).Dockerfile.dev (compose runtime).",
                      section: section, kind: .image),
        ]
    }

    public static let all: [ConfigKey] = {
        var keys: [ConfigKey] = [
            ConfigKey("SAGEDEV_PROJECT", defaultDescription: "the project directory's name",
                      "Compose project name, prefixing containers, volumes and the network: a-z, 0-9, '-' and '_'.",
                      section: .project, example: "sage"),
            ConfigKey("SAGEDEV_RUNTIME", default: "auto",
                      "Where services run: auto (compose when a Docker engine answers, else native), compose or native.",
                      section: .project, kind: .choice(["auto", "compose", "native"])),
            ConfigKey("SAGEDEV_BIND_ADDRESS", default: "127.0.0.1",
                      "Address every published port binds; 0.0.0.0 would expose the stack to the network.",
                      section: .project, kind: .address),
            ConfigKey("SAGEDEV_PORTS", default: "shift",
                      "When the configured ports are taken: shift (to the next free slot when another sagedev instance of this user holds them; anything else is an error), auto (to the next free slot whatever holds them, naming each holder passed over) or fixed (an error).",
                      section: .project, kind: .choice(["shift", "auto", "fixed"])),
            ConfigKey("SAGEDEV_PORT_STRIDE", default: "10",
                      "How far apart slots are: slot N moves every service's port by N times this.",
                      section: .project, kind: .integer(1...1000)),

            ConfigKey("POSTGRES_IMAGE", default: "postgres:18-alpine", "PostgreSQL image (compose runtime).",
                      section: .postgres, kind: .image),
            ConfigKey("POSTGRES_USER", default: "sage", "Database superuser: letters, digits, '_' and '-'.",
                      section: .postgres),
            ConfigKey("POSTGRES_PASSWORD",
                      "Database superuser password (required). With the compose runtime: letters, digits and -._~!$&'()*+,;=: only.",
                      section: .postgres, requirement: .required, secret: true, example: "change-me-postgres"),
            ConfigKey("POSTGRES_DB", default: "sage", "Database the apps use: letters, digits, '_' and '-'.",
                      section: .postgres),
            ConfigKey("POSTGRES_PORT", default: "5432", "Host port for PostgreSQL.", section: .postgres, kind: .port),

            ConfigKey("VALKEY_IMAGE", default: "valkey/valkey:8-alpine", "Valkey image (compose runtime).",
                      section: .valkey, kind: .image),
            ConfigKey("VALKEY_PASSWORD", defaultDescription: "none (the key must be present; empty runs Valkey without a password)",
                      "Valkey password (requirepass). With the compose runtime: the same characters as POSTGRES_PASSWORD.",
                      section: .valkey, requirement: .present, secret: true, example: "change-me-valkey"),
            ConfigKey("VALKEY_PORT", default: "6379", "Host port for Valkey.", section: .valkey, kind: .port),
        ]
        keys += appKeys("BACKEND", "Backend", section: .backend, directory: "apps/backend", port: 3000, healthPath: "/health")
        keys += appKeys("FRONTEND", "Frontend", section: .frontend, directory: "apps/frontend", port: 5173, healthPath: "/")
        keys += [
            ConfigKey("SAGEDEV_SERVICES",
                      "Extra services, comma-separated (lowercase letters, digits and '-'), e.g. worker,mailpit; each takes the <NAME>_* keys below, <NAME> being its name upper-cased with '-' as '_'.",
                      section: .services),
            ConfigKey("<NAME>_KIND", default: "app",
                      "app: a dev command in <NAME>_DIR, run like the backend; container: an image, run by the compose runtime only.",
                      section: .services, kind: .choice(["app", "container"])),
            ConfigKey("<NAME>_DIR", defaultDescription: "none (required for an app)",
                      "An app's source directory, relative to the project directory; watched for hot reload like the backend's.",
                      section: .services, kind: .path),
            ConfigKey("<NAME>_DEV_COMMAND", default: "npm run dev",
                      "Command that runs an app (with /bin/sh -c, in <NAME>_DIR).", section: .services, kind: .command),
            ConfigKey("<NAME>_INSTALL_COMMAND",
                      "Command that installs an app's dependencies before it starts; empty: none.",
                      section: .services, kind: .command),
            ConfigKey("<NAME>_RELOAD", default: "self",
                      "self: the app reloads itself on changes; restart: sagedev restarts it.",
                      section: .services, kind: .choice(["self", "restart"])),
            ConfigKey("<NAME>_FRAMEWORK", default: "auto",
                      "Dev server adapter of an app, as BACKEND_FRAMEWORK: auto, vite, esbuild, nest or none.",
                      section: .services, kind: .choice(DevServerFramework.allCases.map(\.rawValue))),
            ConfigKey("<NAME>_PORT", defaultDescription: "none: a worker without a port, ready once it has run for 1 s",
                      "Host port of the service: an app's PORT (the same inside its container), a container's published port.",
                      section: .services, kind: .port),
            ConfigKey("<NAME>_HEALTH_PATH", defaultDescription: "none (see <NAME>_HEALTH)",
                      "HTTP path that answers 2xx or 3xx once the service is up (short for <NAME>_HEALTH=http:/path).",
                      section: .services),
            ConfigKey("<NAME>_HEALTH", defaultDescription: "tcp when <NAME>_PORT is set",
                      "How readiness is checked on <NAME>_PORT: tcp (a connection is accepted) or http:/path.",
                      section: .services),
            ConfigKey("<NAME>_DEPENDS_ON", defaultDescription: "postgres,valkey,database for an app; none for a container",
                      "Services that must be ready before this one starts, comma-separated (database: the migrate and seed step); none for no dependency.",
                      section: .services),
            ConfigKey("<NAME>_IMAGE", defaultDescription: "node:20-alpine for an app; none (required) for a container",
                      "A container's image, or the base image of an app's dev Dockerfile (compose runtime).",
                      section: .services, kind: .image),
            ConfigKey("<NAME>_CONTAINER_PORT", defaultDescription: "<NAME>_PORT",
                      "The port inside a container that <NAME>_PORT publishes.", section: .services, kind: .port),
            ConfigKey("<NAME>_COMMAND",
                      "A container's command instead of its image's own; empty: the image's.",
                      section: .services, kind: .command),

            ConfigKey("SAGEDEV_MIGRATIONS_DIR", default: "db/migrations",
                      "SQL migrations, applied once each in file-name order; relative to the project directory.",
                      section: .database, kind: .path),
            ConfigKey("SAGEDEV_SEEDS_DIR", default: "db/seeds",
                      "SQL seed files, applied in file-name order after the migrations.", section: .database, kind: .path),
            ConfigKey("SAGEDEV_MIGRATE_COMMAND",
                      "Command that migrates the database instead of the SQL files (run in BACKEND_DIR); empty: none.",
                      section: .database, kind: .command),
            ConfigKey("SAGEDEV_SEED_COMMAND",
                      "Command that seeds the database instead of the SQL files (run in BACKEND_DIR); empty: none.",
                      section: .database, kind: .command),
            ConfigKey("SAGEDEV_RESET_SPARES", default: "2",
                      "Ready copies of the reset template kept for reset-db and db clone, refilled in the background; 0: copy at reset time.",
                      section: .database, kind: .integer(0...16)),

            ConfigKey("SAGEDEV_WATCH_IGNORE", default: "node_modules,.git,dist,build,.sagedev",
                      "Comma-separated patterns (.dockerignore syntax) the file watcher ignores.", section: .watch),
            ConfigKey("SAGEDEV_WATCH_DEBOUNCE_MS", default: "50",
                      "Milliseconds of quiet before a burst of file changes is acted on.", section: .watch,
                      kind: .integer(0...60_000)),

            ConfigKey("SAGEDEV_POSTGRES_BIN_DIR",
                      "Directory holding postgres and initdb; empty: .sagedev/toolchain/bin, then the user toolchain (sagedev toolchain install), then PATH.",
                      section: .native, kind: .path),
            ConfigKey("SAGEDEV_VALKEY_BIN_DIR",
                      "Directory holding valkey-server; empty: .sagedev/toolchain/bin, then the user toolchain (sagedev toolchain install), then PATH.",
                      section: .native, kind: .path),
            ConfigKey("SAGEDEV_POSTGRES_OS_USER",
                      "OS user that runs postgres when sagedev runs as root (PostgreSQL refuses root); empty: sagedev.",
                      section: .native),

            ConfigKey("ANTHROPIC_API_KEY", defaultDescription: "unset",
                      "Example application secret: any key not listed above is passed to the apps (backend, frontend, extra apps).",
                      section: .secrets, secret: true, example: "sk-ant-your-key-here", passthroughExample: true),
        ]
        return keys
    }()

    static let byName: [String: ConfigKey] = {
        var d: [String: ConfigKey] = [:]
        for k in all { d[k.name] = k }
        return d
    }()
}
