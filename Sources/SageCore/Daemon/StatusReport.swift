/// What `status` reports: the stack, the daemon, and one entry per service of the graph. The same value is the
/// control protocol's status reply, the body of `sagedev status --json` and the MCP `status` tool's result; its
/// JSON shape is documented in `status.schema.json` (a test validates real output against it).
public struct StatusReport: Codable, Sendable, Equatable {
    public var project: String
    public var directory: String
    public var runtime: String
    public var runtimeReason: String
    public var watch: WatchStatus
    public var daemon: DaemonStatus
    /// Every wanted service is healthy and none is unwanted.
    public var healthy: Bool
    public var services: [ServiceStatus]
    /// Native runtime: where the server binaries were found.
    public var toolchain: [ToolchainStatus]?
    /// The port slot this checkout runs in (0: the configured ports); see `sagedev instances`.
    public var slot: Int?

    public init(project: String, directory: String, runtime: String, runtimeReason: String, watch: WatchStatus,
                daemon: DaemonStatus, healthy: Bool, services: [ServiceStatus]) {
        self.project = project; self.directory = directory; self.runtime = runtime; self.runtimeReason = runtimeReason
        self.watch = watch; self.daemon = daemon; self.healthy = healthy; self.services = services
    }

    public func service(_ id: ServiceID) -> ServiceStatus? { services.first { $0.name == id } }
}

/// A server binary and the lookup step that found it.
public struct ToolchainStatus: Codable, Sendable, Equatable {
    public var name: String
    public var path: String
    /// bin-dir, project, user or PATH.
    public var source: String
    /// For people: "SAGEDEV_POSTGRES_BIN_DIR", "project toolchain", "user toolchain", "PATH".
    public var from: String
    public init(name: String, path: String, source: String, from: String) {
        self.name = name; self.path = path; self.source = source; self.from = from
    }
}

public struct WatchStatus: Codable, Sendable, Equatable {
    public var enabled: Bool
    /// Directories under watch.
    public var directories: Int?
    /// Why hot reload does not cover everything (an inotify limit).
    public var problem: String?
    public init(enabled: Bool, directories: Int? = nil, problem: String? = nil) {
        self.enabled = enabled; self.directories = directories; self.problem = problem
    }
}

public struct DaemonStatus: Codable, Sendable, Equatable {
    public var pid: Int
    public var uptimeSeconds: Double
    public init(pid: Int, uptimeSeconds: Double) { self.pid = pid; self.uptimeSeconds = uptimeSeconds }
}

public struct ServiceStatus: Codable, Sendable, Equatable {
    public var name: ServiceID
    public var state: ServiceState
    public var reason: String
    /// Wall-clock seconds of the last state change.
    public var since: Double
    public var restarts: Int
    public var wanted: Bool
    /// How to reach it from the host (the password redacted); none for a service without a port.
    public var url: String?
    /// The URL its readiness probe asks (HTTP services): what `sagedev wait` can wait on.
    public var healthURL: String?
    public var health: HealthStatus?
    public var pid: Int?
    public var containerId: String?
    public var container: String?
    public var uptimeSeconds: Double?
    public var lastExit: LastExit?
    /// Dependencies whose outage holds this service back.
    public var dependencyOutage: [ServiceID]?
    public var reload: ReloadStatus?
    /// The last log lines of a crashed or failed service.
    public var logTail: [String]?
    /// What the runtime knows of it (log file, pid or container, resident memory…), as text.
    public var details: [String: String]
    /// An app's dev server adapter, and how it was decided.
    public var framework: FrameworkStatus?
    /// A failed build reported by the app's compiler, until a build succeeds.
    public var build: BuildStatus?
    /// PostgreSQL's client connections in use.
    public var connections: ConnectionsStatus?
    /// Valkey's memory in use.
    public var memory: MemoryStatus?
    /// PostgreSQL: the ready copies of the reset template, and how many clones there are.
    public var readyCopies: ReadyCopiesStatus?
    public var clones: Int?

    public init(name: ServiceID, state: ServiceState, reason: String, since: Double, restarts: Int, wanted: Bool, url: String?,
                details: [String: String] = [:]) {
        self.name = name; self.state = state; self.reason = reason; self.since = since; self.restarts = restarts
        self.wanted = wanted; self.url = url; self.details = details
    }
}

public struct FrameworkStatus: Codable, Sendable, Equatable {
    public var name: String
    public var setting: String
    public var description: String
    public var addYourself: [String]?
    public init(_ d: DevServerDetection) {
        name = d.rule?.framework.rawValue ?? "none"; setting = d.setting.rawValue; description = d.description
        addYourself = d.skippedOptions.isEmpty ? nil : d.skippedOptions
    }
}

public struct BuildStatus: Codable, Sendable, Equatable {
    public var error: String
    public var errors: Int
    public var at: Double
    public var note: String
    public init(error: String, errors: Int, at: Double, note: String) { self.error = error; self.errors = errors; self.at = at; self.note = note }
}

public struct HealthStatus: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable { case ready, notReady = "not-ready", fatal }
    public var outcome: Outcome
    public var reason: String
    public var latencyMs: Double
    public init(outcome: Outcome, reason: String, latencyMs: Double) { self.outcome = outcome; self.reason = reason; self.latencyMs = latencyMs }
}

/// How the service's last process ended: an exit code, or a signal.
public struct LastExit: Codable, Sendable, Equatable {
    public var code: Int?
    public var signal: Int?
    public var signalName: String?
    public init(code: Int? = nil, signal: Int? = nil, signalName: String? = nil) { self.code = code; self.signal = signal; self.signalName = signalName }
}

public struct ReloadStatus: Codable, Sendable, Equatable {
    public var file: String
    public var at: Double
    public var action: String
    public var outcome: String
    public var count: Int
    public var healthyMs: Int?
    public init(file: String, at: Double, action: String, outcome: String, count: Int, healthyMs: Int?) {
        self.file = file; self.at = at; self.action = action; self.outcome = outcome; self.count = count; self.healthyMs = healthyMs
    }
}

public struct ConnectionsStatus: Codable, Sendable, Equatable {
    public var used: Int
    public var max: Int
    /// At or over 80% of max_connections.
    public var warning: Bool
    public init(used: Int, max: Int) { self.used = used; self.max = max; warning = max > 0 && used * 100 >= max * 80 }
}

public struct MemoryStatus: Codable, Sendable, Equatable {
    public var usedBytes: Int
    public var usedHuman: String
    public init(usedBytes: Int, usedHuman: String) { self.usedBytes = usedBytes; self.usedHuman = usedHuman }
}

/// The ready copies of the reset template (SAGEDEV_RESET_SPARES) that resets and clones take.
public struct ReadyCopiesStatus: Codable, Sendable, Equatable {
    public var ready: Int
    public var target: Int
    /// Why there are fewer than `target` (no room on disk, a failed copy).
    public var problem: String?
    public init(ready: Int, target: Int, problem: String? = nil) { self.ready = ready; self.target = target; self.problem = problem }
}

/// Facts about a healthy service that need a connection to it.
public struct ServiceExtras: Sendable, Equatable {
    public var connections: ConnectionsStatus?
    public var memory: MemoryStatus?
    public var readyCopies: ReadyCopiesStatus?
    public var clones: Int?
    public init(connections: ConnectionsStatus? = nil, memory: MemoryStatus? = nil) { self.connections = connections; self.memory = memory }
    public var isEmpty: Bool { connections == nil && memory == nil && readyCopies == nil && clones == nil }
}

/// `sagedev status --json`: the schema version, whether a daemon runs, and (when one does) the status report.
public struct StatusDocument: Encodable, Sendable {
    /// Raised whenever a field's meaning changes or a required field is added; new optional fields keep it.
    public static let schemaVersion = 1
    public var running: Bool
    public var directory: String
    public var report: StatusReport?

    public init(directory: String, report: StatusReport?) {
        self.running = report != nil; self.directory = report?.directory ?? directory; self.report = report
    }

    enum Keys: String, CodingKey { case v, running, directory }
    public func encode(to encoder: any Encoder) throws {
        if let report { try report.encode(to: encoder) }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(StatusDocument.schemaVersion, forKey: .v)
        try c.encode(running, forKey: .running)
        if report == nil { try c.encode(directory, forKey: .directory) }
    }

    /// One line of JSON.
    public var json: String { String(decoding: ControlProtocol.line(self).dropLast(), as: UTF8.self) }
}
