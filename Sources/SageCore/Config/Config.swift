/// The validated configuration of one project: plain values, built by `ConfigLoader` from `.env`
/// and the process environment. Nothing here does I/O.
public struct Config: Sendable, Equatable {
    public enum Runtime: String, Sendable, Equatable, CaseIterable { case auto, compose, native }
    public enum ReloadMode: String, Sendable, Equatable, CaseIterable { case `self`, restart }

    public struct Postgres: Sendable, Equatable {
        public var image: String          // POSTGRES_IMAGE, default postgres:18-alpine
        public var user: String           // POSTGRES_USER
        public var password: String       // POSTGRES_PASSWORD (secret)
        public var database: String       // POSTGRES_DB
        public var port: Int              // POSTGRES_PORT (host port)
        public var binDirectory: String?  // SAGEDEV_POSTGRES_BIN_DIR: where postgres/initdb live (native)
        public var osUser: String?        // SAGEDEV_POSTGRES_OS_USER: who runs postgres when sagedev is root
        public init(image: String, user: String, password: String, database: String, port: Int,
                    binDirectory: String? = nil, osUser: String? = nil) {
            self.image = image; self.user = user; self.password = password; self.database = database
            self.port = port; self.binDirectory = binDirectory; self.osUser = osUser
        }
    }
    public struct Valkey: Sendable, Equatable {
        public var image: String          // VALKEY_IMAGE, default valkey/valkey:8-alpine
        public var password: String       // VALKEY_PASSWORD (secret; empty means no requirepass)
        public var port: Int              // VALKEY_PORT
        public var binDirectory: String?  // SAGEDEV_VALKEY_BIN_DIR
        public init(image: String, password: String, port: Int, binDirectory: String? = nil) {
            self.image = image; self.password = password; self.port = port; self.binDirectory = binDirectory
        }
    }
    public struct App: Sendable, Equatable {
        public var directory: String      // BACKEND_DIR / FRONTEND_DIR, relative to the project directory
        public var devCommand: String     // BACKEND_DEV_COMMAND / FRONTEND_DEV_COMMAND (run with /bin/sh -c)
        public var installCommand: String // BACKEND_INSTALL_COMMAND / FRONTEND_INSTALL_COMMAND ("" = none)
        public var port: Int              // BACKEND_PORT / FRONTEND_PORT
        public var healthPath: String     // BACKEND_HEALTH_PATH / FRONTEND_HEALTH_PATH
        public var reloadMode: ReloadMode // BACKEND_RELOAD / FRONTEND_RELOAD
        public var image: String          // BACKEND_IMAGE / FRONTEND_IMAGE: base image for the dev Dockerfile
        public var framework: DevServerFramework // BACKEND_FRAMEWORK / FRONTEND_FRAMEWORK: the dev server's adapter
        public init(directory: String, devCommand: String, installCommand: String, port: Int,
                    healthPath: String, reloadMode: ReloadMode, image: String, framework: DevServerFramework = .auto) {
            self.directory = directory; self.devCommand = devCommand; self.installCommand = installCommand
            self.port = port; self.healthPath = healthPath; self.reloadMode = reloadMode; self.image = image
            self.framework = framework
        }
    }

    public var projectName: String          // SAGEDEV_PROJECT
    public var projectDirectory: String     // absolute; where .env lives
    public var runtime: Runtime             // SAGEDEV_RUNTIME
    public var bindAddress: String          // SAGEDEV_BIND_ADDRESS, default 127.0.0.1
    public var postgres: Postgres { didSet { rebuildServices() } }
    public var valkey: Valkey { didSet { rebuildServices() } }
    public var backend: App { didSet { rebuildServices() } }
    public var frontend: App { didSet { rebuildServices() } }
    /// Services declared in `.env` beyond the standard ones (`SAGEDEV_SERVICES`), as the loader built them.
    public var extraServices: [ServiceSpec] { didSet { rebuildServices() } }
    /// Every service of the stack in start order: postgres, valkey, the database job, backend, frontend and the
    /// extra services. Derived from the values above, so it never disagrees with them.
    public private(set) var services: ServiceGraph
    public var migrationsDirectory: String  // SAGEDEV_MIGRATIONS_DIR, default db/migrations
    public var seedsDirectory: String       // SAGEDEV_SEEDS_DIR, default db/seeds
    public var migrateCommand: String       // SAGEDEV_MIGRATE_COMMAND ("" = none)
    public var seedCommand: String          // SAGEDEV_SEED_COMMAND ("" = none)
    public var watchIgnore: [String]        // SAGEDEV_WATCH_IGNORE (comma-separated, .dockerignore syntax)
    public var watchDebounceMilliseconds: Int // SAGEDEV_WATCH_DEBOUNCE_MS, default 50
    /// SAGEDEV_RESET_SPARES: ready copies of the reset template kept for resets and clones (0: copy at reset time).
    public var resetSpares: Int = 2
    /// Application secrets and other keys passed through to the app services (e.g. ANTHROPIC_API_KEY).
    public var passthrough: [String: String]
    /// Every key/value the .env file defined after interpolation (process environment overrides applied).
    public var values: [String: String]
    /// SAGEDEV_PORTS and SAGEDEV_PORT_STRIDE: how `up` places the ports when the configured ones are taken.
    public var portsMode: PortsMode = .shift
    public var portStride: Int = 10
    /// The slot and compose name this configuration was placed in (`ConfigLoader.check(…, placement:)`); the ports
    /// and `projectName` above already include it.
    public var placement: Placement = .configured

    public init(projectName: String, projectDirectory: String, runtime: Runtime, bindAddress: String,
                postgres: Postgres, valkey: Valkey, backend: App, frontend: App,
                migrationsDirectory: String, seedsDirectory: String, migrateCommand: String, seedCommand: String,
                watchIgnore: [String], watchDebounceMilliseconds: Int,
                passthrough: [String: String], values: [String: String], extraServices: [ServiceSpec] = []) {
        self.projectName = projectName; self.projectDirectory = projectDirectory; self.runtime = runtime
        self.bindAddress = bindAddress; self.postgres = postgres; self.valkey = valkey
        self.backend = backend; self.frontend = frontend
        self.migrationsDirectory = migrationsDirectory; self.seedsDirectory = seedsDirectory
        self.migrateCommand = migrateCommand; self.seedCommand = seedCommand
        self.watchIgnore = watchIgnore; self.watchDebounceMilliseconds = watchDebounceMilliseconds
        self.passthrough = passthrough; self.values = values
        self.extraServices = extraServices
        self.services = Config.graph(standard: Config.standardServices(postgres: postgres, valkey: valkey, backend: backend,
                                                                       frontend: frontend), extra: extraServices)
            .resolvingDevServers(in: projectDirectory)
    }

    private mutating func rebuildServices() {
        services = Config.graph(standard: Config.standardServices(postgres: postgres, valkey: valkey, backend: backend,
                                                                  frontend: frontend), extra: extraServices)
            .resolvingDevServers(in: projectDirectory)
    }

    /// The app spec of a service (nil unless it is an app: backend, frontend, an extra app).
    public func app(_ s: ServiceID) -> AppSpec? { services[s]?.app }
    /// The host port of a service (nil for a portless worker, a job, or an unknown name).
    public func port(of s: ServiceID) -> Int? { services[s]?.port }

    /// Host-side URLs (what the user and the probes connect to). `redacted` hides passwords as ****.
    public func postgresURL(redacted: Bool, host: String? = nil) -> String {
        let pw = redacted ? "****" : percentEncode(postgres.password)
        return "postgres://\(percentEncode(postgres.user)):\(pw)@\(host ?? urlHost)\(":")\(postgres.port)/\(percentEncode(postgres.database))"
    }
    public func valkeyURL(redacted: Bool, host: String? = nil) -> String {
        let auth = valkey.password.isEmpty ? "" : ":\(redacted ? "****" : percentEncode(valkey.password))@"
        return "redis://\(auth)\(host ?? urlHost):\(valkey.port)/0"
    }
    public func httpURL(_ s: ServiceID) -> String {
        guard let spec = services[s], let port = spec.port, case .http(let path) = spec.probe else { return "" }
        return "http://\(urlHost):\(port)\(path.hasPrefix("/") ? "" : "/")\(path)"
    }
    /// The host to dial for a service bound to `bindAddress` (0.0.0.0 is dialled on loopback).
    public var urlHost: String {
        switch bindAddress {
        case "0.0.0.0", "": return "127.0.0.1"
        case "::": return "[::1]"
        default: return bindAddress.contains(":") ? "[\(bindAddress)]" : bindAddress
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
public func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(b))
        default:
            out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    return out
}

extension String {
    func leftPadded(to n: Int, with c: Character = "0") -> String {
        count >= n ? self : String(repeating: c, count: n - count) + self
    }
}
