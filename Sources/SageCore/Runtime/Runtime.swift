import SageSystem

/// What a runtime tells the engine. Runtimes emit these from any thread; the engine hops to its own queue.
public enum RuntimeEvent: Sendable, Equatable {
    /// The service's main process or container ended.
    case exited(ServiceID, ExitStatus)
}

/// A started service, as the runtime knows it.
public struct RunningService: Sendable, Equatable {
    /// The main pid on the host (native), or the container's pid as the engine reports it (compose), if known.
    public var pid: Int32?
    /// Container id and name (compose).
    public var containerID: String?
    public var containerName: String?
    public var startedAt: Double  // wall clock seconds
    public init(pid: Int32? = nil, containerID: String? = nil, containerName: String? = nil, startedAt: Double = wallClockSeconds()) {
        self.pid = pid; self.containerID = containerID; self.containerName = containerName; self.startedAt = startedAt
    }
}

/// The seam between the engine (which decides) and a way of running the four services (which carries out).
/// Every method may block (it runs on a worker thread, never on the engine's queue) and has its own deadline.
public protocol ServiceRuntime: AnyObject, Sendable {
    /// "native" or "compose".
    var kind: String { get }
    /// Set by the engine before any other call; the runtime reports exits through it.
    func setEventHandler(_ handler: @escaping @Sendable (RuntimeEvent) -> Void)
    /// One-time preparation before starting: initdb, compose file, images. Idempotent; throws a message that says what to fix.
    func prepare(_ config: Config) throws
    /// Finds services a previous daemon left running and takes them over (after a daemon crash).
    func adopt(_ config: Config) -> [ServiceID: RunningService]
    /// Starts a service; returns once it is started (not healthy). Its output goes to the log store.
    func start(_ service: ServiceID, config: Config) throws -> RunningService
    /// Stops a service gracefully (with escalation); returns when it is gone.
    func stop(_ service: ServiceID, config: Config) throws
    /// Runs a one-shot job (migrate/seed/install command) in a service's context; output goes to the log store too.
    func runJob(_ command: String, service: ServiceID, config: Config, deadline: Deadline) throws -> CompletedProcess
    /// Extra fields for `status` (container id, compose health, ports…).
    func details(_ service: ServiceID, config: Config) -> [String: String]
    /// How long the service's current process or container has been running; nil when none runs (the readiness
    /// of a worker without a port).
    func runningSeconds(_ service: ServiceID) -> Double?
    /// Removes what `prepare` made that holds data (volumes / data directories). Only with the user's consent.
    func removeData(config: Config) throws
    /// How to run a PostgreSQL client tool (`pg_dump`, `psql`) against the stack's server, with the connection
    /// and user flags already given; the caller adds `--dbname` and the rest. The password is in `environment`.
    func postgresClient(_ tool: String, config: Config) throws -> PostgresClientCommand
}

/// argv and environment for a PostgreSQL client tool (see `ServiceRuntime.postgresClient`).
public struct PostgresClientCommand: Sendable, Equatable {
    public var argv: [String]
    public var environment: [String: String]
    public init(argv: [String], environment: [String: String]) { self.argv = argv; self.environment = environment }
}

/// The one error type of the runtimes: what failed, on which service/value, and what to do next.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public var service: ServiceID?
    public var message: String
    public init(_ service: ServiceID?, _ message: String) { self.service = service; self.message = message }
    public var description: String { service.map { "\($0.rawValue): \(message)" } ?? message }
}

extension ServiceRuntime {
    /// Natively, the toolchain's client over TCP to the published port (PGPASSWORD, never argv).
    public func postgresClient(_ tool: String, config c: Config) throws -> PostgresClientCommand {
        let env = ProcessEnvironment.current()
        let binary = try Toolchain(projectDirectory: c.projectDirectory, environment: env).postgres(c, tool)
        let host = c.urlHost.hasPrefix("[") ? String(c.urlHost.dropFirst().dropLast()) : c.urlHost
        return PostgresClientCommand(
            argv: [binary, "--host", host, "--port", String(c.postgres.port), "--username", c.postgres.user],
            environment: ["PGPASSWORD": c.postgres.password, "PATH": env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
                          "PGCONNECT_TIMEOUT": "10", "LC_ALL": "C"])
    }

    /// Something that changes when a self-reloading dev server restarts its app process (native: the members of the
    /// service's process group). nil when the runtime cannot tell; reloads are then confirmed by an observed outage.
    public func restartMarker(_ service: ServiceID) -> String? { nil }

    public func runningSeconds(_ service: ServiceID) -> Double? { nil }

    /// Installs an app's dependencies after a manifest or lockfile change (native: the install command).
    public func installDependencies(_ service: ServiceID, config: Config, deadline: Deadline) throws -> String {
        guard let app = config.app(service), !app.installCommand.isEmpty else { return "no install command is set" }
        let r = try runJob(app.installCommand, service: service, config: config, deadline: deadline)
        guard r.status.isSuccess else {
            throw RuntimeError(service, "`\(app.installCommand)` failed (\(r.status)): \(r.stderrText.split(separator: "\n").suffix(5).joined(separator: "\n"))")
        }
        return "ran `\(app.installCommand)`"
    }
}
