/// A service's name as the graph knows it: `postgres`, `valkey`, `backend`, `frontend`, the database job, or an
/// extra service declared in `.env` (`SAGEDEV_SERVICES=worker,mailpit`). A value, not an enum case: a new service is
/// a new spec, never a new `case`.
public struct ServiceID: Hashable, Sendable, Comparable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) }
    public var description: String { rawValue }
    public static func < (a: ServiceID, b: ServiceID) -> Bool { a.rawValue < b.rawValue }

    public static let postgres: ServiceID = "postgres"
    public static let valkey: ServiceID = "valkey"
    public static let backend: ServiceID = "backend"
    public static let frontend: ServiceID = "frontend"
    /// The one-shot database step (migrate, seed, reset template) that apps depend on.
    public static let database: ServiceID = "database"

    /// The `.env` prefix of this service's own keys: `worker` → `WORKER_`.
    public var envPrefix: String { rawValue.uppercased().replacingOccurrences(of: "-", with: "_") + "_" }
}

/// Where a value came from, for messages that point at the line to fix.
public struct ConfigSource: Sendable, Equatable, Hashable {
    public var key: String
    public var file: String?
    public var line: Int?
    public init(key: String, file: String? = nil, line: Int? = nil) { self.key = key; self.file = file; self.line = line }
}

/// How readiness is decided: wire probes for the data services, HTTP or TCP for apps and containers, and "still
/// alive after a while" for a worker without a port.
public enum ProbeSpec: Sendable, Equatable, Hashable {
    case postgres
    case resp
    case http(path: String)
    case tcp
    /// Ready once the process has stayed up this long (a portless worker).
    case processAlive(seconds: Double)
    /// Ready once it has exited 0 (a job).
    case completed
}

/// How a service is stopped: which processes get the signal, and how long they have before SIGKILL.
public struct TeardownPolicy: Sendable, Equatable, Hashable {
    public enum Target: String, Sendable, Equatable, Hashable { case leader, group }
    public var target: Target
    public var graceSeconds: Double
    public init(target: Target = .group, graceSeconds: Double = 10) { self.target = target; self.graceSeconds = graceSeconds }
}

/// What must hold of a dependency before a service starts.
public enum DependencyCondition: String, Sendable, Equatable, Hashable, Codable {
    case healthy
    case completedSuccessfully = "completed"
}

public struct Dependency: Sendable, Equatable, Hashable {
    public var id: ServiceID
    public var condition: DependencyCondition
    public init(_ id: ServiceID, _ condition: DependencyCondition = .healthy) { self.id = id; self.condition = condition }
}

/// A dev command in a directory (the backend, the frontend, a worker).
public struct AppSpec: Sendable, Equatable, Hashable {
    public var directory: String       // relative to the project directory
    public var devCommand: String      // run with /bin/sh -c
    public var installCommand: String  // "" = none
    public var reload: Config.ReloadMode
    public var image: String           // base image of the dev Dockerfile (compose runtime)
    public var framework: DevServerFramework  // the dev server's adapter (Apps/DevServer.swift)
    /// The adapter in effect and why, resolved when the configuration is built (`auto` reads package.json).
    /// Derived from the fields above and the app's files, so it takes no part in equality.
    public var devServer: DevServerDetection?

    public static func == (a: AppSpec, b: AppSpec) -> Bool {
        a.directory == b.directory && a.devCommand == b.devCommand && a.installCommand == b.installCommand
            && a.reload == b.reload && a.image == b.image && a.framework == b.framework
    }
    public func hash(into h: inout Hasher) {
        h.combine(directory); h.combine(devCommand); h.combine(installCommand); h.combine(reload); h.combine(image); h.combine(framework)
    }
    public init(directory: String, devCommand: String, installCommand: String = "", reload: Config.ReloadMode = .self,
                image: String = "node:20-alpine", framework: DevServerFramework = .auto) {
        self.directory = directory; self.devCommand = devCommand; self.installCommand = installCommand
        self.reload = reload; self.image = image; self.framework = framework
    }
}

/// An image run as is (compose runtime only), e.g. a mail catcher.
public struct ContainerSpec: Sendable, Equatable, Hashable {
    public var image: String
    public var command: String         // "" = the image's own
    public var containerPort: Int?     // the port inside the container that `port` publishes
    public init(image: String, command: String = "", containerPort: Int? = nil) {
        self.image = image; self.command = command; self.containerPort = containerPort
    }
}

/// A one-shot step that must exit 0 before its dependents start.
public struct JobSpec: Sendable, Equatable, Hashable {
    /// What the job runs. `.database` is sagedev's own migrate/seed/template step.
    public enum Work: Sendable, Equatable, Hashable { case database, command(String, directory: String) }
    public var work: Work
    public init(_ work: Work) { self.work = work }
}

/// One service of the stack, as data. The graph is a list of these; the machine, both runtimes, the compose file
/// and `status` read them, and no code names a service to decide what it does.
public struct ServiceSpec: Sendable, Equatable, Hashable {
    public enum Kind: Sendable, Equatable, Hashable {
        case postgres
        case valkey
        case app(AppSpec)
        case container(ContainerSpec)
        case job(JobSpec)

        public var name: String {
            switch self {
            case .postgres: return "postgres"
            case .valkey: return "valkey"
            case .app: return "app"
            case .container: return "container"
            case .job: return "job"
            }
        }
    }

    public var id: ServiceID
    public var kind: Kind
    public var dependsOn: [Dependency]
    /// The host port, and the `.env` key it came from (nil for a portless worker or a job).
    public var port: Int?
    public var portKey: String?
    public var probe: ProbeSpec
    public var teardown: TeardownPolicy
    /// Where the service was declared (for cycle and unknown-name messages).
    public var source: ConfigSource?

    public init(id: ServiceID, kind: Kind, dependsOn: [Dependency] = [], port: Int? = nil, portKey: String? = nil,
                probe: ProbeSpec, teardown: TeardownPolicy = TeardownPolicy(), source: ConfigSource? = nil) {
        self.id = id; self.kind = kind; self.dependsOn = dependsOn; self.port = port; self.portKey = portKey
        self.probe = probe; self.teardown = teardown; self.source = source
    }

    public var app: AppSpec? { if case .app(let a) = kind { return a }; return nil }
    public var container: ContainerSpec? { if case .container(let c) = kind { return c }; return nil }
    public var job: JobSpec? { if case .job(let j) = kind { return j }; return nil }
    public var isJob: Bool { job != nil }
    /// Apps are watched for hot reload and get a dev command's environment.
    public var isApp: Bool { app != nil }
}
