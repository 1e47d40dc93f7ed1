/// One `.env` key sagedev understands. `ConfigKey.all` is the single list of them: the loader, the
/// validation, `env.example`, the README's table and `sagedev config` all read it.
public struct ConfigKey: Sendable, Equatable {
    public enum Section: String, Sendable, CaseIterable {
        case project = "Project"
        case postgres = "PostgreSQL 18"
        case valkey = "Valkey 8"
        case backend = "Backend"
        case frontend = "Frontend"
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

    /// Keys sagedev reads itself (everything in the table but documented pass-through examples).
    public static var consumed: [ConfigKey] { all.filter { !$0.isPassthroughExample } }

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
                      "Example application secret: any key not listed above is passed to the backend and frontend.",
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
