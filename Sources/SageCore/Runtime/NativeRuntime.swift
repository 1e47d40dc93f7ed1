import Dispatch
import SageSystem

/// Runs the four services as local processes: PostgreSQL 18 and Valkey 8 from the toolchain, the apps through
/// /bin/sh. Each service gets its own session (so its process group can be signalled whole and it outlives a daemon
/// crash), writes its output straight into `.sagedev/logs/<service>.log` (so a daemon crash cannot break its stdout),
/// and leaves a pid file with its /proc start time so that the next daemon can adopt it.
public final class NativeRuntime: ServiceRuntime, @unchecked Sendable {
    public let kind = "native"
    public let paths: ProjectPaths
    public let logs: LogStore
    private let toolchain: Toolchain
    private let environment: [String: String]
    private let queue = DispatchQueue(label: "sagedev.native")
    private var handler: (@Sendable (RuntimeEvent) -> Void)?
    private var watched: [ServiceID: Watched] = [:]
    private var tailer: LogTailer?

    /// One process we watch: our child (exit status known) or an adopted one (only its exit is known).
    final class Watched: @unchecked Sendable {
        let pid: Int32
        let pidfd: Int32
        let child: ChildProcess?
        let source: DispatchSourceRead
        var stopping = false
        init(pid: Int32, pidfd: Int32, child: ChildProcess?, source: DispatchSourceRead) {
            self.pid = pid; self.pidfd = pidfd; self.child = child; self.source = source
        }
    }

    public init(paths: ProjectPaths, logs: LogStore, environment: [String: String]) {
        self.paths = paths; self.logs = logs; self.environment = environment
        self.toolchain = Toolchain(projectDirectory: paths.root, environment: environment)
    }

    public func setEventHandler(_ handler: @escaping @Sendable (RuntimeEvent) -> Void) {
        queue.sync { self.handler = handler }
    }

    // MARK: preparation

    /// Who runs postgres: ourselves, or (as root, which postgres refuses) an unprivileged OS user.
    public struct PostgresUser: Sendable { public let name: String?; public let uid: UInt32; public let gid: UInt32 }

    public func postgresUser(_ c: Config) throws -> PostgresUser {
        guard UserAccount.isRoot else { return PostgresUser(name: nil, uid: ProcessIdentity.userID, gid: ProcessIdentity.groupID) }
        let name = c.postgres.osUser ?? "sagedev"
        if UserAccount.named(name) == nil {
            let r = try Subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                        "--shell", "/usr/sbin/nologin", name], deadline: .after(seconds: 30))
            guard r.status.isSuccess else {
                throw RuntimeError(.postgres, "postgres refuses to run as root and OS user '\(name)' could not be created: \(r.stderrText.trimmed); create it or set SAGEDEV_POSTGRES_OS_USER in .env")
            }
        }
        guard let account = UserAccount.named(name) else { throw RuntimeError(.postgres, "OS user '\(name)' does not exist; set SAGEDEV_POSTGRES_OS_USER in .env") }
        return PostgresUser(name: name, uid: account.uid, gid: account.gid)
    }

    /// The postgres Unix socket directory. As root it cannot live in the 0700 run directory, which the postgres
    /// user cannot enter, so it gets its own directory owned by that user.
    public func postgresSocketDirectory(_ user: PostgresUser? = nil) -> String {
        UserAccount.isRoot ? paths.state + "/pg-socket" : paths.run
    }

    private func asPostgresUser(_ argv: [String], _ user: PostgresUser) -> [String] {
        guard let name = user.name else { return argv }
        return ["/usr/bin/setpriv", "--reuid=\(name)", "--regid=\(name)", "--clear-groups", "--"] + argv
    }

    public func prepare(_ c: Config) throws {
        if let ct = c.services.specs.first(where: { $0.container != nil }) {
            throw RuntimeError(ct.id, "\(ct.id) is a container service (\(ct.id.envPrefix)KIND=container), which the native runtime cannot run; start a Docker engine and set SAGEDEV_RUNTIME=compose, or make \(ct.id) an app")
        }
        try paths.ensure()
        let postgres = try toolchain.postgres(c), initdb = try toolchain.postgres(c, "initdb")
        _ = try toolchain.valkeyServer(c)
        let user = try postgresUser(c)
        if user.name != nil { try checkReachable(paths.postgresData, by: user) }
        let socketDir = postgresSocketDirectory(user)
        try FileDescriptor.makeDirectories(socketDir, mode: 0o700)
        try FileDescriptor.makeDirectories(paths.valkeyData, mode: 0o700)
        if user.name != nil { FileDescriptor.changeOwner(socketDir, uid: user.uid, gid: user.gid) }
        if !FileDescriptor.exists(paths.postgresData + "/PG_VERSION") {
            try initialisePostgres(c, postgres: postgres, initdb: initdb, user: user)
        }
    }

    /// Fails with a fix when the postgres OS user cannot traverse to the data directory.
    private func checkReachable(_ path: String, by user: PostgresUser) throws {
        var dir = ""
        for part in path.split(separator: "/").dropLast() {
            dir += "/" + part
            guard let st = FileDescriptor.info(dir) else { continue }
            let mode = st.permissions
            let ok = st.uid == user.uid ? mode & 0o100 != 0 : (st.gid == user.gid ? mode & 0o010 != 0 : mode & 0o001 != 0)
            if !ok {
                throw RuntimeError(.postgres, "postgres runs as OS user '\(user.name ?? "")' (it refuses root), which cannot enter \(dir) (mode \(String(mode & 0o777, radix: 8))): run `chmod o+x \(dir)` or set SAGEDEV_POSTGRES_OS_USER in .env")
            }
        }
    }

    private func initialisePostgres(_ c: Config, postgres: String, initdb: String, user: PostgresUser) throws {
        let dataDir = paths.postgresData
        let staging = dataDir + ".initdb"
        _ = try? Subprocess.run(["rm", "-rf", staging], deadline: .after(seconds: 30))
        try FileDescriptor.makeDirectories(staging, mode: 0o700)
        // The password reaches initdb through a 0600 file, never a command line.
        let pwfile = paths.state + "/.pgpass-init"
        try FileDescriptor.writeFileAtomically(pwfile, Array(c.postgres.password.utf8), mode: 0o600)
        defer { FileDescriptor.remove(pwfile) }
        if user.name != nil {
            FileDescriptor.changeOwner(staging, uid: user.uid, gid: user.gid)
            FileDescriptor.changeOwner(pwfile, uid: user.uid, gid: user.gid)
        }
        logs.appendLine("postgres", "sagedev: initialising a new PostgreSQL data directory in \(dataDir)")
        let r = try Subprocess.run(asPostgresUser([initdb, "-D", staging, "-U", c.postgres.user, "--pwfile=\(pwfile)",
                                                   "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-instructions"], user),
                                   environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], deadline: .after(seconds: 300))
        guard r.status.isSuccess else {
            throw RuntimeError(.postgres, "initdb failed (\(r.status)): \(r.stderrText.trimmed)")
        }
        // The app database, made in single-user mode so no server or password is needed yet.
        if c.postgres.database != "postgres" {
            let sql = "CREATE DATABASE \(quoteIdentifier(c.postgres.database));\n"
            let s = try Subprocess.run(asPostgresUser([postgres, "--single", "-D", staging, "-j", "postgres"], user),
                                       environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], input: Array(sql.utf8),
                                       deadline: .after(seconds: 120))
            guard s.status.isSuccess, !s.stdoutText.contains("ERROR") else {
                throw RuntimeError(.postgres, "creating database \"\(c.postgres.database)\" failed: \(s.stdoutText.trimmed) \(s.stderrText.trimmed)")
            }
        }
        // Only a complete cluster takes the real name: an interrupted initdb never leaves a half data directory.
        do { try FileDescriptor.move(staging, to: dataDir) } catch let e as SystemError {
            throw RuntimeError(.postgres, "cannot move \(staging) to \(dataDir): \(SystemError.describe(errno: e.errno))")
        }
    }

    // MARK: adoption

    public func adopt(_ c: Config) -> [ServiceID: RunningService] {
        var found: [ServiceID: RunningService] = [:]
        for s in c.services.serviceIDs {
            guard let rec = PidRecord.read(paths.pidFile(s)) else { continue }
            if rec.isAlive, watch(s, pid: rec.pid, child: nil) {
                found[s] = RunningService(pid: rec.pid)
                logs.appendLine(s.rawValue, "sagedev: adopted running process \(rec.pid) from a previous daemon")
            } else {
                FileDescriptor.remove(paths.pidFile(s))
            }
        }
        startTailing(c)
        return found
    }

    // MARK: start / stop

    public func start(_ s: ServiceID, config c: Config) throws -> RunningService {
        if let port = c.port(of: s), let conflict = PortCheck.check(host: c.bindAddress, port: port) {
            throw RuntimeError(s, "\(conflict.description); set \(c.services[s]?.portKey ?? "its port") in .env or stop that process")
        }
        try paths.ensure()
        startTailing(c)
        let logPath = paths.log(s.rawValue)
        var spec: SpawnSpec
        switch c.services[s]?.kind {
        case .postgres:
            let user = try postgresUser(c)
            try clearStalePostmasterPid()
            let args = [try toolchain.postgres(c), "-D", paths.postgresData, "-p", String(c.postgres.port),
                        "-c", "listen_addresses=\(c.bindAddress)", "-c", "unix_socket_directories=\(postgresSocketDirectory(user))",
                        "-c", "logging_collector=off"]
            spec = SpawnSpec(executable: "", arguments: asPostgresUser(args, user), environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"])
        case .valkey:
            let conf = paths.run + "/valkey.conf"
            var lines = ["port \(c.valkey.port)", "bind \(c.bindAddress)", "dir \(paths.valkeyData)",
                         "appendonly yes", "appendfsync everysec", "protected-mode no", "daemonize no"]
            // The password goes in a 0600 file: a command line is readable by every user through /proc.
            if !c.valkey.password.isEmpty { lines.append("requirepass \"\(c.valkey.password.replacingAll("\\", "\\\\").replacingAll("\"", "\\\""))\"") }
            try FileDescriptor.writeFileAtomically(conf, Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o600)
            spec = SpawnSpec(executable: "", arguments: [try toolchain.valkeyServer(c), conf], environment: ["PATH": "/usr/bin:/bin"])
        case .app(let app):
            let dir = app.directory.hasPrefix("/") ? app.directory : c.projectDirectory + "/" + app.directory
            guard FileDescriptor.isDirectory(dir) else {
                throw RuntimeError(s, "directory \(dir) does not exist: check \(s.envPrefix)DIR in .env")
            }
            try installIfMissing(s, app: app, directory: dir, config: c)
            spec = .shell(c.launch(s)!.command, environment: appEnvironment(s, c), workingDirectory: dir)
        case .container:
            throw RuntimeError(s, "a container service needs the compose runtime; set SAGEDEV_RUNTIME=compose in .env")
        case .job, nil:
            throw RuntimeError(s, "\(s.rawValue) is not a service this runtime starts")
        }
        spec.executable = spec.arguments[0]
        spec.stdout = .file(logPath, append: true)
        spec.stderr = .file(logPath, append: true)
        let child = try Spawner.spawn(spec)
        if let st = ProcFS.startTime(pid: child.pid) {
            try? PidRecord(pid: child.pid, startTime: st).write(paths.pidFile(s))
        }
        _ = watch(s, pid: child.pid, child: child)
        return RunningService(pid: child.pid)
    }

    /// An app with a package.json and no node_modules gets its install command first (a fresh checkout); later
    /// changes to the manifest run it through hot reload.
    private func installIfMissing(_ s: ServiceID, app: AppSpec, directory dir: String, config c: Config) throws {
        guard !app.installCommand.isEmpty, FileDescriptor.exists(dir + "/package.json"),
              !FileDescriptor.exists(dir + "/node_modules") else { return }
        logs.appendLine(s.rawValue, "sagedev: no node_modules yet; running the install command `\(app.installCommand)`")
        let what = try installDependencies(s, config: c, deadline: .after(seconds: 600))
        logs.appendLine(s.rawValue, "sagedev: \(what)")
    }

    /// The apps' environment: ours, then what the configuration gives the service (see `Config.environment(of:)`).
    public func appEnvironment(_ s: ServiceID, _ c: Config) -> [String: String] {
        environment.merging(c.nativeEnvironment(of: s)) { _, new in new }
    }

    /// postgres refuses to start over a postmaster.pid whose pid is alive, even when that pid was reused by an
    /// unrelated process. A live postmaster on this data directory is adopted elsewhere; any other holder is stale.
    private func clearStalePostmasterPid() throws {
        let file = paths.postgresData + "/postmaster.pid"
        guard let text = FileDescriptor.readText(file),
              let pid = Int32(text.split(separator: "\n").first ?? "") else { return }
        if let cmd = ProcFS.commandLine(pid: pid), cmd.first?.hasSuffix("postgres") == true,
           cmd.contains(paths.postgresData) {
            throw RuntimeError(.postgres, "a postmaster (pid \(pid)) already runs on \(paths.postgresData); run 'sagedev down' or stop it before starting another")
        }
        FileDescriptor.remove(file)
    }

    /// A killed postmaster's children (each in a session of its own) end by themselves once they notice, which
    /// on a loaded machine can take seconds; a new postmaster started meanwhile fails ("pre-existing shared memory
    /// block is still in use") and costs a second restart. They are found by their working directory, the data
    /// directory, given up to 5 s, then killed.
    private func endOrphanedPostgresChildren() {
        let dir = paths.postgresData
        // Each look reads every process's cwd: every 20 ms, not every 2.
        if ProcFS.waitUntil(deadline: .after(seconds: 5), everyMilliseconds: 20, { ProcFS.processes(workingIn: dir).isEmpty }) { return }
        for pid in ProcFS.processes(workingIn: dir) { Signals.send(Signals.kill, toProcess: pid) }
        ProcFS.waitUntil(deadline: .after(seconds: 2), everyMilliseconds: 20) { ProcFS.processes(workingIn: dir).isEmpty }
    }

    /// Watches a pid through a pidfd (exit is reported without polling). Returns false if the pid is gone.
    @discardableResult
    private func watch(_ s: ServiceID, pid: Int32, child: ChildProcess?) -> Bool {
        let fd = child.map { FileDescriptor.duplicate($0.pidfd) } ?? Pidfd.open(pid)
        guard fd >= 0 else { return false }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        let w = Watched(pid: pid, pidfd: fd, child: child, source: source)
        source.setEventHandler { [weak self] in self?.exited(s, w) }
        source.setCancelHandler { FileDescriptor.close(fd) }
        queue.sync {
            if let old = watched[s], old.pid != pid { old.source.cancel() }
            watched[s] = w
        }
        source.resume()
        return true
    }

    private func exited(_ s: ServiceID, _ w: Watched) {
        w.source.cancel()
        let status = w.child?.tryWait() ?? .exited(-1)
        // After a crash, leftovers of its group (e.g. node --watch's child) go too, and are gone before a restart
        // reuses the port. During a stop the teardown owns the group: the dev server under `sh -c` gets its grace.
        if !w.stopping {
            Signals.send(Signals.kill, toGroup: w.pid)
            ProcFS.waitForGroupToEnd(w.pid, deadline: .after(seconds: 2))
            if s == .postgres { endOrphanedPostgresChildren() }
        }
        if watched[s] === w { watched[s] = nil; FileDescriptor.remove(paths.pidFile(s)) }
        tailer?.poll()
        if !w.stopping { handler?(.exited(s, status)) }
    }

    public func stop(_ s: ServiceID, config c: Config) throws {
        let w: Watched? = queue.sync {
            let w = watched[s]
            w?.stopping = true
            return w
        }
        guard let w else { return }
        let policy = c.services[s]?.teardown ?? TeardownPolicy(target: .group, graceSeconds: 5)
        let grace = Int(policy.graceSeconds * 1000)
        let leaderOnly = policy.target == .leader
        let teardown: Teardown = c.services[s]?.kind == .postgres ? .postgresFast(graceMilliseconds: grace) : .standard(graceMilliseconds: grace)
        if let child = w.child {
            // The postmaster alone gets SIGINT (fast shutdown); signalling its group would hit the backends directly.
            if leaderOnly { stopLeaderFirst(pid: w.pid, pidfd: w.pidfd, teardown) } else { child.terminate(teardown) }
        } else {
            stopLeaderFirst(pid: w.pid, pidfd: w.pidfd, teardown, wholeGroup: !leaderOnly)
        }
        queue.sync {
            if watched[s] === w { w.source.cancel(); watched[s] = nil }
        }
        FileDescriptor.remove(paths.pidFile(s))
        if ProcFS.isAlive(pid: w.pid, startTime: nil) {
            throw RuntimeError(s, "process \(w.pid) did not exit after SIGKILL")
        }
    }

    /// A teardown for a process we did not spawn (adopted) or for the postmaster, which alone gets the first
    /// signals (signalling its group would hit the backends directly). Each step waits, up to its grace, for the
    /// whole group to be gone, so members get their graceful exit before anything is killed.
    private func stopLeaderFirst(pid: Int32, pidfd: Int32, _ teardown: Teardown, wholeGroup: Bool = false) {
        for step in teardown.steps {
            if step.signal == Signals.kill || wholeGroup {
                Signals.send(step.signal, toGroup: pid)
            } else {
                Signals.send(step.signal, toProcess: pid)
            }
            let deadline = Deadline.after(milliseconds: step.graceMilliseconds)
            if Pidfd.waitForExit(pidfd, deadline: deadline) {
                Pidfd.reapIfExited(pid)
                ProcFS.waitForGroupToEnd(pid, deadline: deadline)
                if ProcFS.processesHoldingResources(inGroup: pid).isEmpty { return }
            }
        }
        Signals.send(Signals.kill, toGroup: pid)
        ProcFS.waitForGroupToEnd(pid, deadline: .after(seconds: 5))
    }

    public func runJob(_ command: String, service s: ServiceID, config c: Config, deadline: Deadline) throws -> CompletedProcess {
        let directory = c.app(s)?.directory ?? c.backend.directory
        let dir = directory.hasPrefix("/") ? directory : c.projectDirectory + "/" + directory
        logs.appendLine(s.rawValue, "sagedev: running `\(command)` in \(dir)")
        let r = try Subprocess.run(["/bin/sh", "-c", command], environment: appEnvironment(s, c), workingDirectory: dir, deadline: deadline)
        for text in [r.stdoutText, r.stderrText] where !text.isEmpty {
            for line in text.split(separator: "\n") { logs.appendLine(s.rawValue, String(line)) }
        }
        return r
    }

    public func details(_ s: ServiceID, config c: Config) -> [String: String] {
        var d: [String: String] = ["log": paths.log(s.rawValue)]
        if let w = queue.sync(execute: { watched[s] }) {
            d["pid"] = String(w.pid)
            if let rss = ProcFS.residentSetBytes(pid: w.pid) { d["rssBytes"] = String(rss) }
        }
        return d
    }

    public func removeData(config c: Config) throws {
        let r = try Subprocess.run(["rm", "-rf", paths.postgresData, paths.valkeyData], deadline: .after(seconds: 120))
        guard r.status.isSuccess else { throw RuntimeError(nil, "could not delete data: \(r.stderrText.trimmed)") }
    }

    public func restartMarker(_ s: ServiceID) -> String? {
        guard let w = queue.sync(execute: { watched[s] }) else { return nil }
        return ProcFS.processes(inGroup: w.pid).sorted().map(String.init).joined(separator: ",")
    }

    public func runningSeconds(_ s: ServiceID) -> Double? {
        guard let w = queue.sync(execute: { watched[s] }) else { return nil }
        return ProcFS.runningSeconds(pid: w.pid)
    }

    /// The pids this runtime watches (for tests and status).
    public func pids() -> [ServiceID: Int32] { queue.sync { watched.mapValues(\.pid) } }

    private func startTailing(_ c: Config) {
        let names = c.services.serviceIDs.map(\.rawValue)
        queue.sync {
            if let tailer { tailer.track(names) } else { tailer = LogTailer(paths: paths, logs: logs, queue: queue, services: names) }
        }
    }
}

/// Follows the service log files that the services write themselves, feeding new lines to the ring buffers.
/// inotify tells it when a file grows, so an idle stack costs no wake-ups. Rotation is copy-and-truncate, since
/// the services hold their files open in append mode.
final class LogTailer: @unchecked Sendable {
    let paths: ProjectPaths
    let logs: LogStore
    let queue: DispatchQueue
    private var offsets: [String: Int] = [:]
    private var services: [String] = []
    private let inotify: Inotify?
    private var source: DispatchSourceRead?

    init(paths: ProjectPaths, logs: LogStore, queue: DispatchQueue, services: [String]) {
        self.paths = paths; self.logs = logs; self.queue = queue
        let inotify = try? Inotify()
        self.inotify = inotify
        track(services)
        if let inotify {
            _ = try? inotify.addWatch(paths.logs, mask: [.modify, .create])
            let src = DispatchSource.makeReadSource(fileDescriptor: inotify.fileDescriptor, queue: queue)
            src.setEventHandler { [weak self] in self?.drainAndPoll() }
            src.setCancelHandler { inotify.close() }
            src.resume()
            source = src
        }
    }
    deinit { source?.cancel() }

    /// Follows these services' log files too (from their current end), e.g. after `.env` declared a new one.
    func track(_ names: [String]) {
        for s in names where !services.contains(s) {
            services.append(s)
            offsets[s] = FileDescriptor.info(paths.log(s))?.size ?? 0
        }
    }

    private func drainAndPoll() {
        while let events = try? inotify?.readEvents(bufferSize: 8192), !events.isEmpty {}
        poll()
    }

    /// Reads what each service log gained since the last look.
    func poll() {
        for s in services {
            let p = paths.log(s)
            guard let size = FileDescriptor.info(p)?.size else { continue }
            var off = offsets[s] ?? 0
            if size < off { off = 0 }  // truncated by rotation
            if size > off, let chunk = FileDescriptor.readFile(p, offset: off, maximum: min(size - off, 1 << 20)), !chunk.isEmpty {
                logs.ingest(s, bytes: chunk); off += chunk.count
            }
            if off >= logs.rotateBytes { logs.copyTruncate(s); off = 0 }
            offsets[s] = off
        }
    }
}


/// Quotes an SQL identifier ("my db" → "\"my db\"").
public func quoteIdentifier(_ s: String) -> String { "\"" + s.replacingAll("\"", "\"\"") + "\"" }

extension String {
    /// Without leading and trailing whitespace (and newlines).
    public var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
    func replacingAll(_ a: String, _ b: String) -> String {
        guard !a.isEmpty else { return self }
        let pattern = Array(a.utf8), source = Array(utf8)
        var out = [UInt8](), i = 0
        while i < source.count {
            if i + pattern.count <= source.count && Array(source[i..<i + pattern.count]) == pattern {
                out += b.utf8; i += pattern.count
            } else { out.append(source[i]); i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
