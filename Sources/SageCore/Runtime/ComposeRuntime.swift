import Foundation
import Dispatch
import SageSystem

/// Runs the four services as containers through Docker Compose (v2, or v1 with a warning).
///
/// `prepare` writes `.sagedev/compose.yaml` (0600) and makes sure every image is there; `start` is
/// `up -d --no-deps [--build] <svc>` followed by `ps --format json` to find the container. Exits are reported from
/// one long-running `docker events` child filtered to the project's `die` events, never by polling; each service's
/// output comes from a `logs -f --timestamps` child into the log store. Readiness stays with the engine's probes
/// over the published ports: the compose healthchecks are only for people who run `docker compose` by hand.
public final class ComposeRuntime: ServiceRuntime, @unchecked Sendable {
    public struct Options: Sendable, Equatable {
        /// Pull an image that is not present locally (fails fast, with a clear message, when no registry answers).
        public var pullMissingImages: Bool
        public var pullSeconds: Double
        /// `up` of an app service builds its dev image the first time; that may take a while.
        public var buildSeconds: Double
        public var upSeconds: Double
        /// How long `stop` gives a container before Docker kills it.
        public var stopTimeoutSeconds: Int
        public init(pullMissingImages: Bool = true, pullSeconds: Double = 600, buildSeconds: Double = 1200,
                    upSeconds: Double = 180, stopTimeoutSeconds: Int = 10) {
            self.pullMissingImages = pullMissingImages; self.pullSeconds = pullSeconds; self.buildSeconds = buildSeconds
            self.upSeconds = upSeconds; self.stopTimeoutSeconds = stopTimeoutSeconds
        }
    }

    public let kind = "compose"
    public let logs: LogStore
    public let environment: [String: String]
    public let options: Options
    private let composeFile: @Sendable (Config) throws -> String

    private struct Death { var containerID: String; var timeNano: Int64; var status: ExitStatus }
    private struct State {
        var handler: (@Sendable (RuntimeEvent) -> Void)?
        var installation: ComposeInstallation?
        var cli: ComposeCLI?
        var engineVersion: String?
        /// The container each service runs as, by full id; deaths of other containers are not exits.
        var current: [ServiceID: String] = [:]
        /// When each service's current run began (wall clock): a restarted container keeps its id, so a death
        /// from before that moment belongs to the previous run.
        var runSince: [ServiceID: Double] = [:]
        var stopping: Set<ServiceID> = []
        var deaths: [Death] = []
        var logFollowers: [ServiceID: LineFollower] = [:]
        var events: LineFollower?
        var eventsSince: Double = 0
        var built: Set<ServiceID> = []
        var warnings: [String] = []
        var closed = false
        /// Whether followers a killed daemon left behind were looked for (once per runtime).
        var reaped = false
        /// Whether the project's network is known to exist (an `up` succeeded, or containers were adopted).
        var networkReady = false
    }
    private let state = Locked(State())
    private let followerRecord = Lock()
    /// Compose creates the project's network in whichever `up` needs it first. Two `up`s at once (postgres and
    /// valkey start together) would both create it, the engine allows the duplicate name, and every later `up`
    /// fails with "network … is ambiguous". So until one `up` has succeeded they run one at a time.
    private let firstUp = Lock()

    /// - Parameter composeFile: the compose YAML for a configuration (`ComposeFile.generate` unless a test
    ///   supplies its own).
    public init(logs: LogStore, environment: [String: String], options: Options = Options(),
                composeFile: @escaping @Sendable (Config) throws -> String = { ComposeFile.generate($0) }) {
        self.logs = logs; self.environment = environment; self.options = options; self.composeFile = composeFile
    }

    deinit { close() }

    public func setEventHandler(_ handler: @escaping @Sendable (RuntimeEvent) -> Void) {
        state.withValue { $0.handler = handler }
    }

    /// Things the user should know (Compose v1 in use, healthcheck settings the engine cannot take).
    public var warnings: [String] { state.current.warnings }

    // MARK: paths and names

    public static func composeFilePath(_ c: Config) -> String { c.projectDirectory + "/.sagedev/compose.yaml" }

    /// Compose project names are lower-case letters, digits, '-' and '_', starting with a letter or digit.
    public static func projectName(_ c: Config) -> String {
        var out = ""
        for ch in c.projectName.lowercased().unicodeScalars {
            if ("a"..."z").contains(ch) || ("0"..."9").contains(ch) || ch == "-" || ch == "_" { out.unicodeScalars.append(ch) }
            else { out += "-" }
        }
        while let f = out.unicodeScalars.first, f == "-" || f == "_" { out.removeFirst() }
        return out.isEmpty ? "sagedev" : out
    }

    /// The .env key that sets a service's image (`<NAME>_IMAGE`), and the host port's key.
    public static func imageKey(_ s: ServiceID) -> String { s.envPrefix + "IMAGE" }
    public static func portKey(_ s: ServiceID, _ c: Config) -> String { c.services[s]?.portKey ?? s.envPrefix + "PORT" }
    static func image(_ s: ServiceID, _ c: Config) -> String {
        switch c.services[s]?.kind {
        case .postgres: c.postgres.image
        case .valkey: c.valkey.image
        case .app(let a): a.image
        case .container(let ct): ct.image
        case .job, nil: ""
        }
    }

    /// Engines before v25 refuse a healthcheck with `start_interval`; for them the line is dropped (the
    /// healthcheck then polls at its interval from the start, which only `docker compose` by hand ever waits on).
    public static func adaptToEngine(_ yaml: String, engineMajorVersion major: Int?) -> (yaml: String, dropped: Bool) {
        guard let major, major < 25 else { return (yaml, false) }
        var dropped = false
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            let t = line.drop(while: { $0 == " " })
            if t.hasPrefix("start_interval:") { dropped = true; return false }
            return true
        }
        return (lines.joined(separator: "\n"), dropped)
    }

    // MARK: the CLI for a configuration

    /// The port keys of a checkout placed in a slot, for Compose's environment: Compose reads `.env` itself, and a
    /// value there derived from a port (`API_URL=http://127.0.0.1:${BACKEND_PORT}`) must see the slot's port too.
    static func slotPortEnvironment(_ c: Config) -> [String: String] {
        guard c.placement.offset != 0 else { return [:] }
        var env: [String: String] = [:]
        for p in c.slotPorts { env[p.key] = String(p.port) }
        return env
    }

    private func cli(for c: Config) throws -> ComposeCLI {
        if let cli = state.current.cli, cli.project == ComposeRuntime.projectName(c),
           cli.file == ComposeRuntime.composeFilePath(c) {
            return cli
        }
        let installation: ComposeInstallation
        if let known = state.current.installation {
            installation = known
        } else {
            installation = try ComposeInstallation.detect(environment: environment)
            state.withValue {
                $0.installation = installation
                if let w = installation.warning, !$0.warnings.contains(w) { $0.warnings.append(w) }
            }
            if let w = installation.warning { logs.appendLine("sagedev", "warning: \(w)") }
        }
        let envFile = c.projectDirectory + "/.env"
        var secrets = [c.postgres.password, c.valkey.password]
        secrets += c.passthrough.values
        let cli = ComposeCLI(installation: installation, project: ComposeRuntime.projectName(c),
                             file: ComposeRuntime.composeFilePath(c),
                             envFile: FileDescriptor.exists(envFile) ? envFile : nil,
                             environment: environment.merging(ComposeRuntime.slotPortEnvironment(c)) { _, slot in slot },
                             workingDirectory: c.projectDirectory, secrets: secrets.filter { !$0.isEmpty })
        state.withValue { $0.cli = cli }
        reapAbandonedFollowers(c)
        return cli
    }

    // MARK: records for the next daemon

    /// Each container's main process is recorded like a native service's (pid and start time in
    /// .sagedev/run/<service>.pid). A command that finds no daemon but a live process there knows the stack still
    /// runs, and starts a daemon that adopts the containers instead of reporting their ports as taken.
    private func recordMainProcess(_ s: ServiceID, _ c: Config, pid: Int32?) {
        let path = ProjectPaths(root: c.projectDirectory).pidFile(s)
        guard let pid, let start = ProcFS.startTime(pid: pid) else { FileDescriptor.remove(path); return }
        try? PidRecord(pid: pid, startTime: start).write(path)
    }

    private func forgetMainProcess(_ s: ServiceID, _ c: Config) {
        FileDescriptor.remove(ProjectPaths(root: c.projectDirectory).pidFile(s))
    }

    private static func followersFile(_ projectDirectory: String) -> String {
        ProjectPaths(root: projectDirectory).run + "/compose-followers"
    }

    /// A `logs -f` or `events` child and the process that started it.
    private struct FollowerRecord { var follower: PidRecord; var owner: PidRecord }

    /// The `logs -f` and `events` children run in their own sessions, so a daemon that is killed leaves them
    /// running (`events` forever). Each is kept in .sagedev/run/compose-followers with its owner (pids and start
    /// times), and a later runtime of the project ends those whose owner is gone.
    private func recordFollower(_ f: LineFollower?, projectDirectory: String?) {
        guard let f, let projectDirectory, let start = ProcFS.startTime(pid: f.pid),
              let ownStart = ProcFS.startTime(pid: ProcessIdentity.pid) else { return }
        let path = ComposeRuntime.followersFile(projectDirectory)
        followerRecord.locked {
            var live = ComposeRuntime.readFollowers(path).filter { ProcFS.isAlive(pid: $0.follower.pid, startTime: $0.follower.startTime) }
            live.append(FollowerRecord(follower: PidRecord(pid: f.pid, startTime: start), owner: PidRecord(pid: ProcessIdentity.pid, startTime: ownStart)))
            let text = live.map { "\($0.follower.pid) \($0.follower.startTime) \($0.owner.pid) \($0.owner.startTime)\n" }.joined()
            try? FileDescriptor.writeFileAtomically(path, Array(text.utf8), mode: 0o600)
        }
    }

    private static func readFollowers(_ path: String) -> [FollowerRecord] {
        (FileDescriptor.readText(path) ?? "").split(separator: "\n").compactMap { line in
            let p = line.split(separator: " ")
            guard p.count == 4, let pid = Int32(p[0]), let start = UInt64(p[1]),
                  let owner = Int32(p[2]), let ownerStart = UInt64(p[3]) else { return nil }
            return FollowerRecord(follower: PidRecord(pid: pid, startTime: start), owner: PidRecord(pid: owner, startTime: ownerStart))
        }
    }

    /// Ends the children of daemons that died without stopping them (never those of a daemon that still runs,
    /// e.g. the one that won the race when two `sagedev up` started a daemon at once).
    private func reapAbandonedFollowers(_ c: Config) {
        guard state.withValue({ st -> Bool in defer { st.reaped = true }; return !st.reaped }) else { return }
        let path = ComposeRuntime.followersFile(c.projectDirectory)
        followerRecord.locked {
            for r in ComposeRuntime.readFollowers(path) where !r.owner.isAlive && r.follower.isAlive {
                Signals.send(Signals.kill, toGroup: r.follower.pid)
                Signals.send(Signals.kill, toProcess: r.follower.pid)
            }
        }
    }

    // MARK: ServiceRuntime

    public func prepare(_ c: Config) throws {
        let cli = try cli(for: c)
        // A clear error now rather than a failing `up` later; also tells which healthcheck keys the engine takes.
        let version = try DockerEngineProbe.serverVersion(environment: environment)
        state.withValue { $0.engineVersion = version }

        let generated = try composeFile(c)
        let adapted = ComposeRuntime.adaptToEngine(generated, engineMajorVersion: DockerEngineProbe.majorVersion(version))
        if adapted.dropped {
            let w = "Docker engine \(version) is older than v25: healthcheck start_interval left out of .sagedev/compose.yaml"
            state.withValue { if !$0.warnings.contains(w) { $0.warnings.append(w) } }
        }
        let dir = c.projectDirectory + "/.sagedev"
        do {
            try FileDescriptor.makeDirectories(dir, mode: 0o755)
            try FileDescriptor.writeFileAtomically(cli.file, Array(adapted.yaml.utf8), mode: 0o600)
            // The file builds the app images from Dockerfiles next to it, with its own directory as the context.
            // The Dockerfiles copy nothing, and .sagedev holds data and sockets: keep the build context empty.
            for s in c.services.specs where s.isApp {
                try writeIfChanged(dir + "/" + ComposeFile.dockerfileName(s.id), ComposeFile.dockerfile(for: s.id))
            }
            try writeIfChanged(dir + "/.dockerignore", "# Generated by sagedev: the dev images copy nothing from here.\n*\n")
        } catch let e as SystemError {
            throw RuntimeError(nil, "cannot write the compose files in \(dir): \(e.message)")
        }
        try ensureImages(c, cli)
        try ensureEvents(cli)
    }

    /// Every image must be present locally (or pullable): a missing one is named with the .env key to change.
    private func ensureImages(_ c: Config, _ cli: ComposeCLI) throws {
        var checked = Set<String>()
        for s in c.services.serviceIDs {
            let image = ComposeRuntime.image(s, c)
            guard !image.isEmpty, checked.insert(image).inserted else { continue }
            let r = try cli.runUnchecked(cli.imageInspect([image]), service: s, deadline: .after(seconds: 30))
            if r.status.isSuccess { continue }
            let err = r.stderrText
            guard err.lowercased().contains("no such image") else { throw cli.failure(cli.imageInspect([image]), r, service: s) }
            var why = "it is not present locally"
            if options.pullMissingImages {
                logs.appendLine(s.rawValue, "sagedev: pulling \(image)")
                let p = try? cli.runUnchecked(cli.pull(image), service: s, deadline: .after(seconds: options.pullSeconds))
                if let p, p.status.isSuccess { continue }
                let pullError = p.map { ComposeCLI.lastLines($0.stderrText.trimmingCharacters(in: .whitespacesAndNewlines), 2) }
                    ?? "it did not finish in time"
                why += " and pulling it failed (\(cli.redact(pullError)))"
            }
            let used = c.services[s]?.isApp == true ? "the base image of the \(s.rawValue) dev image" : "the \(s.rawValue) image"
            throw RuntimeError(s, "image \(image) (\(used)) cannot be used: \(why); set \(ComposeRuntime.imageKey(s)) in .env to an image that exists locally (`docker image ls`), or make it available (`docker pull \(image)` or `docker load`)")
        }
    }

    public func adopt(_ c: Config) -> [ServiceID: RunningService] {
        guard FileDescriptor.exists(ComposeRuntime.composeFilePath(c)), let cli = try? cli(for: c),
              let containers = try? cli.containers(deadline: .after(seconds: 15)) else { return [:] }
        try? ensureEvents(cli)
        var found: [ServiceID: RunningService] = [:]
        for s in c.services.serviceIDs {
            guard let ct = containers.first(where: { $0.service == s.rawValue && $0.isRunning }) else { continue }
            state.withValue { $0.networkReady = true }
            let info = try? inspect(cli, ct.id)
            let id = info?.id ?? ct.id
            state.withValue { $0.current[s] = id; $0.runSince[s] = info?.startedAt ?? 0; $0.stopping.remove(s) }
            // Lines written while no daemon ran: from the log file's last write on.
            var since = wallClockSeconds()
            if let modified = FileDescriptor.info(logs.path(for: s.rawValue))?.modified { since = modified }
            startLogs(s, cli, c, since: since)
            logs.appendLine(s.rawValue, "sagedev: adopted running container \(ct.name) (\(ct.id.prefix(12)))")
            recordMainProcess(s, c, pid: info?.pid)
            found[s] = RunningService(pid: info?.pid, containerID: id, containerName: info?.name ?? ct.name,
                                      startedAt: info?.startedAt ?? wallClockSeconds())
        }
        return found
    }

    public func start(_ s: ServiceID, config c: Config) throws -> RunningService {
        let cli = try cli(for: c)
        guard FileDescriptor.exists(cli.file) else {
            throw RuntimeError(s, "\(cli.file) does not exist: the runtime was not prepared (run `sagedev up`)")
        }
        try ensureEvents(cli)
        let before = try cli.containers(deadline: .after(seconds: 30)).first { $0.service == s.rawValue }
        if before?.isRunning != true { try checkPortFree(s, c) }

        // Deaths during `up` (a recreated container) belong to no current container and are not exits.
        state.withValue { $0.current[s] = nil; $0.stopping.remove(s) }
        let since = wallClockSeconds()
        let build = c.services[s]?.isApp == true && !state.current.built.contains(s)
        let argv = cli.up([s.rawValue], build: build, noDeps: true)
        do {
            let deadline = Deadline.after(seconds: build ? options.buildSeconds : options.upSeconds)
            if state.current.networkReady {
                _ = try cli.run(argv, service: s, deadline: deadline)
            } else {
                try firstUp.locked {
                    _ = try cli.run(argv, service: s, deadline: deadline)
                    state.withValue { $0.networkReady = true }
                }
            }
        } catch let e as RuntimeError {
            throw ComposeRuntime.portConflict(in: e.message, service: s, config: c) ?? e
        }
        if build { state.withValue { _ = $0.built.insert(s) } }

        guard let ct = try cli.containers(deadline: .after(seconds: 30)).first(where: { $0.service == s.rawValue }) else {
            throw RuntimeError(s, "`\(cli.display(argv))` succeeded but `docker compose ps` shows no \(s.rawValue) container; check `docker compose -p \(cli.project) ps -a`")
        }
        let info = try inspect(cli, ct.id)
        let diedAlready: ExitStatus? = state.withValue { st in
            st.current[s] = info.id
            st.runSince[s] = since
            // An exit that raced us (the container died before we knew its id) is reported now.
            guard let d = st.deaths.last(where: { $0.containerID == info.id && Double($0.timeNano) / 1e9 >= since }) else { return nil }
            st.current[s] = nil
            return d.status
        }
        startLogs(s, cli, c, since: since - 1)
        recordMainProcess(s, c, pid: diedAlready == nil ? info.pid : nil)
        if let status = diedAlready {
            let handler = state.current.handler
            DispatchQueue.global().async { handler?(.exited(s, status)) }
        }
        return RunningService(pid: info.pid, containerID: info.id, containerName: info.name, startedAt: info.startedAt ?? since)
    }

    public func stop(_ s: ServiceID, config c: Config) throws {
        let cli = try cli(for: c)
        state.withValue { _ = $0.stopping.insert(s) }
        forgetMainProcess(s, c)
        _ = try cli.run(cli.stop([s.rawValue], timeoutSeconds: options.stopTimeoutSeconds), service: s,
                        deadline: .after(seconds: Double(options.stopTimeoutSeconds) + 60))
        let follower: LineFollower? = state.withValue { st in
            st.current[s] = nil
            return st.logFollowers.removeValue(forKey: s)
        }
        // `logs -f` ends by itself once the container stopped; give it a moment to deliver the last lines.
        if let follower, !follower.waitForExit(deadline: .after(seconds: 2)) { follower.stop() }
    }

    public func runJob(_ command: String, service s: ServiceID, config c: Config, deadline: Deadline) throws -> CompletedProcess {
        let cli = try cli(for: c)
        let running = (try? cli.containers(deadline: deadline.earlier(.after(seconds: 30))))?
            .contains { $0.service == s.rawValue && $0.isRunning } ?? false
        let argv = running ? cli.exec(s.rawValue, ["sh", "-c", command]) : cli.run(s.rawValue, ["sh", "-c", command])
        logs.appendLine(s.rawValue, "sagedev: running `\(cli.redact(command))` in \(running ? "the running" : "a one-off") \(s.rawValue) container")
        let r = try cli.runUnchecked(argv, service: s, deadline: deadline)
        for text in [r.stdoutText, r.stderrText] where !text.isEmpty {
            for line in text.split(separator: "\n") { logs.appendLine(s.rawValue, String(line)) }
        }
        return r
    }

    public func details(_ s: ServiceID, config c: Config) -> [String: String] {
        var d: [String: String] = ["runtime": "compose", "log": logs.path(for: s.rawValue)]
        guard let cli = try? cli(for: c) else { return d }
        d["project"] = cli.project
        do {
            guard let ct = try cli.containers(deadline: .after(seconds: 10)).first(where: { $0.service == s.rawValue }) else {
                d["state"] = "absent"
                return d
            }
            d["container"] = ct.name
            d["containerId"] = String(ct.id.prefix(12))
            d["state"] = ct.state
            if !ct.health.isEmpty { d["health"] = ct.health }
            d["ports"] = ct.portsDescription
            d["image"] = ct.image
            d["status"] = ct.status
            if !ct.isRunning, let code = ct.exitCode { d["exitCode"] = String(code) }
        } catch {
            d["error"] = "\(error)"
        }
        return d
    }

    public func runningSeconds(_ s: ServiceID) -> Double? {
        state.withValue { st in
            guard st.current[s] != nil, let since = st.runSince[s], since > 0 else { return nil }
            return max(0, wallClockSeconds() - since)
        }
    }

    public func removeData(config c: Config) throws {
        try down(config: c, volumes: true)
    }

    /// Under compose the client runs inside the postgres container (`exec -T`), so the host needs no PostgreSQL
    /// tools; the password reaches it as PGPASSWORD through `exec -e`, never argv.
    public func postgresClient(_ tool: String, config c: Config) throws -> PostgresClientCommand {
        let cli = try cli(for: c)
        var env = environment
        env["PGPASSWORD"] = c.postgres.password
        return PostgresClientCommand(argv: cli.exec("postgres", [tool, "--username", c.postgres.user], environmentKeys: ["PGPASSWORD"]),
                                     environment: env)
    }

    // MARK: beyond the seam

    /// `down [--volumes]`: removes the containers and the network; the named volumes stay unless `volumes`.
    public func down(config c: Config, volumes: Bool) throws {
        let cli = try cli(for: c)
        guard FileDescriptor.exists(cli.file) else { return }
        state.withValue { st in
            for s in c.services.serviceIDs { st.stopping.insert(s) }
            st.current = [:]
            st.networkReady = false
        }
        for s in c.services.serviceIDs { forgetMainProcess(s, c) }
        if !volumes {
            // `down` keeps anonymous volumes (the apps' node_modules), and no later `up` would use them again.
            _ = try cli.run(cli.rm(), deadline: .after(seconds: Double(options.stopTimeoutSeconds) + 120))
        }
        _ = try cli.run(cli.down(volumes: volumes, timeoutSeconds: options.stopTimeoutSeconds),
                        deadline: .after(seconds: Double(options.stopTimeoutSeconds) + 120))
        let followers: [LineFollower] = state.withValue { st in
            defer { st.logFollowers = [:] }
            return Array(st.logFollowers.values)
        }
        for f in followers where !f.waitForExit(deadline: .after(seconds: 2)) { f.stop() }
    }

    /// `ps --format json` for the project (all containers, running or not).
    public func containers(config c: Config) throws -> [ComposeContainer] {
        try cli(for: c).containers(deadline: .after(seconds: 30))
    }

    /// Stops the `logs` and `events` children. The containers keep running.
    public func close() {
        let (followers, events): ([LineFollower], LineFollower?) = state.withValue { st in
            st.closed = true
            defer { st.logFollowers = [:]; st.events = nil }
            return (Array(st.logFollowers.values), st.events)
        }
        for f in followers { f.stop(graceMilliseconds: 500) }
        events?.stop(graceMilliseconds: 500)
    }

    // MARK: internals

    /// Rewriting an unchanged Dockerfile would only disturb build caches and file watchers.
    private func writeIfChanged(_ path: String, _ text: String) throws {
        if FileDescriptor.readText(path) == text { return }
        try FileDescriptor.writeFileAtomically(path, Array(text.utf8), mode: 0o644)
    }

    private struct ContainerInfo { var id: String; var name: String; var pid: Int32?; var startedAt: Double? }

    private func inspect(_ cli: ComposeCLI, _ id: String) throws -> ContainerInfo {
        let r = try cli.run(cli.inspect([id]), deadline: .after(seconds: 15))
        guard let array = try? JSONSerialization.jsonObject(with: Data(r.stdout)) as? [Any],
              let o = array.first as? [String: Any] else {
            throw RuntimeError(nil, "`\(cli.display(cli.inspect([id])))` did not print a container: \(r.stdoutText.prefix(200))")
        }
        let st = o["State"] as? [String: Any] ?? [:]
        var name = o["Name"] as? String ?? ""
        if name.hasPrefix("/") { name.removeFirst() }
        let pid = (st["Pid"] as? NSNumber).map { Int32(truncatingIfNeeded: $0.intValue) }
        let started = (st["StartedAt"] as? String).flatMap { splitDockerTimestamp($0)?.time }
        return ContainerInfo(id: o["Id"] as? String ?? id, name: name, pid: pid == 0 ? nil : pid, startedAt: started)
    }

    /// Fails before `up` when a published port is taken, so nothing is left half-created.
    private func checkPortFree(_ s: ServiceID, _ c: Config) throws {
        guard let port = c.port(of: s), port > 0 else { return }
        let host = c.bindAddress.isEmpty ? "0.0.0.0" : c.bindAddress
        do {
            let l = try Listener.tcp(host: host, port: port)
            l.close()
        } catch let e as SystemError where e.code == .addressInUse {
            throw ComposeRuntime.portInUse(s, host: host, port: port, config: c)
        } catch {
            // Not a conflict (e.g. an address this host lacks): Docker reports it precisely.
        }
    }

    static func portInUse(_ s: ServiceID, host: String, port: Int, config c: Config) -> RuntimeError {
        RuntimeError(s, "port \(port) on \(host) is already in use, so the \(s.rawValue) container cannot publish it: stop whatever holds it (`ss -ltnp 'sport = :\(port)'`) or set \(portKey(s, c)) in .env to a free port")
    }

    /// Recognises Docker's "port is taken" failures in `up`'s stderr and names the port.
    public static func portConflict(in message: String, service s: ServiceID, config c: Config) -> RuntimeError? {
        // "listen tcp4 127.0.0.1:5432: bind: address already in use" (docker-proxy)
        // "Bind for 127.0.0.1:5432 failed: port is already allocated" (another container)
        var endpoint: Substring?
        if let r = message.range(of: ": bind: address already in use") {
            endpoint = message[..<r.lowerBound].split(separator: " ").last
        } else if let r = message.range(of: " failed: port is already allocated"),
                  let b = message[..<r.lowerBound].range(of: "Bind for ", options: .backwards) {
            endpoint = message[b.upperBound..<r.lowerBound]
        }
        guard let endpoint, let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else { return nil }
        var host = String(endpoint[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return portInUse(s, host: host.isEmpty ? c.bindAddress : host, port: port, config: c)
    }

    private func startLogs(_ s: ServiceID, _ cli: ComposeCLI, _ c: Config, since: Double) {
        let logs = self.logs
        let name = s.rawValue
        let follower = try? cli.follow(cli.logs(name, follow: true, since: String(format: "%.6f", since)), onLine: { line, stream in
            if let (time, text) = splitDockerTimestamp(line) {
                logs.appendLine(name, text, time: time)
            } else if stream == .stderr, !line.isEmpty {
                logs.appendLine(name, "docker compose: \(cli.redact(line))")
            }
        }, onExit: { _ in })
        recordFollower(follower, projectDirectory: c.projectDirectory)
        let old: LineFollower? = state.withValue { st in
            let old = st.logFollowers[s]
            st.logFollowers[s] = follower
            return old
        }
        old?.stop(graceMilliseconds: 500)
    }

    /// One `docker events` child per runtime reports the project's container deaths. If it ends while the runtime
    /// is in use (the engine restarted), it is started again from where it left off.
    private func ensureEvents(_ cli: ComposeCLI) throws {
        let needed: Double? = state.withValue { st in
            guard st.events == nil, !st.closed else { return nil }
            if st.eventsSince == 0 { st.eventsSince = wallClockSeconds() - 1 }
            return st.eventsSince
        }
        guard let since = needed else { return }
        let follower = try cli.follow(cli.events(since: String(format: "%.6f", since)), onLine: { [weak self] line, stream in
            guard stream == .stdout, let ev = ContainerEvent.parse(line), ev.action == "die" else { return }
            self?.died(ev)
        }, onExit: { [weak self] _ in
            self?.eventsEnded(cli)
        })
        recordFollower(follower, projectDirectory: cli.workingDirectory)
        let extra: LineFollower? = state.withValue { st in
            if st.events == nil && !st.closed { st.events = follower; return nil }
            return follower
        }
        extra?.stop(graceMilliseconds: 200)
    }

    private func eventsEnded(_ cli: ComposeCLI) {
        let restart: Bool = state.withValue { st in
            st.events = nil
            return !st.closed
        }
        guard restart else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(1)) { [weak self] in
            try? self?.ensureEvents(cli)
        }
    }

    private func died(_ ev: ContainerEvent) {
        let report: (ServiceID, ExitStatus, @Sendable (RuntimeEvent) -> Void)? = state.withValue { st in
            if ev.timeNano > 0 { st.eventsSince = max(st.eventsSince, Double(ev.timeNano) / 1e9) }
            // `--since` replays events after a restart of the events child: each death counts once.
            if st.deaths.contains(where: { $0.containerID == ev.containerID && $0.timeNano == ev.timeNano }) { return nil }
            st.deaths.append(Death(containerID: ev.containerID, timeNano: ev.timeNano, status: ev.exitStatus))
            if st.deaths.count > 128 { st.deaths.removeFirst(st.deaths.count - 128) }
            let s = ServiceID(ev.service)
            guard let cur = st.current[s],
                  cur.hasPrefix(ev.containerID) || ev.containerID.hasPrefix(cur),
                  ev.timeNano == 0 || Double(ev.timeNano) / 1e9 >= (st.runSince[s] ?? 0) else { return nil }
            st.current[s] = nil
            guard !st.stopping.contains(s), let handler = st.handler else { return nil }
            return (s, ev.exitStatus, handler)
        }
        guard let (s, status, handler) = report else { return }
        logs.appendLine(s.rawValue, "sagedev: container \(ev.name.isEmpty ? String(ev.containerID.prefix(12)) : ev.name) exited (\(status))")
        handler(.exited(s, status))
    }
}
