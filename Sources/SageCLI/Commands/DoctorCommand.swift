import SageCore
import SageSystem

struct DoctorCommand: Command {
    static let name = "doctor"
    static let summary = "Check the toolchain, Docker and Compose, ports, .env, the inotify limit and disk space, with fixes."
    static let options: [OptionSpec] = []
    static let discussion = "Exit 0 when every check passes, 1 when any fails (warnings do not fail)."

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
    }

    enum Level { case ok, warn, fail }

    func run(_ context: CommandContext) throws -> Int32 {
        let out = context.output
        let paths = Project.paths(context)
        var failed = false
        func report(_ level: Level, _ what: String, _ detail: String, fix: String? = nil) {
            let mark: String
            switch level {
            case .ok: mark = out.paint("✔", .green)
            case .warn: mark = out.paint("!", .yellow)
            case .fail: mark = out.paint("✘", .red); failed = true
            }
            out.line("\(mark) \(what.padding(16)) \(detail)")
            if let fix, level != .ok { out.line("  \(" ".padding(16)) fix: \(fix)") }
        }

        // .env
        let config: Config?
        do {
            config = try loadPlacedConfig(context, paths, quiet: true)
            report(.ok, ".env", "valid (\(paths.envFile))")
        } catch let e as CLIError {
            config = nil
            report(.fail, ".env", e.message.split(separator: "\n").first.map(String.init) ?? e.message,
                   fix: "run 'sagedev compose' to see every problem with file:line:column, then edit .env")
        }

        // Toolchain
        let toolchain = Toolchain(projectDirectory: paths.root, environment: context.environment)
        let checks: [(String, [String], String?, String)] = [
            ("postgres", ["postgres"], config?.postgres.binDirectory, "SAGEDEV_POSTGRES_BIN_DIR"),
            ("initdb", ["initdb"], config?.postgres.binDirectory, "SAGEDEV_POSTGRES_BIN_DIR"),
            ("pg_dump", ["pg_dump"], config?.postgres.binDirectory, "SAGEDEV_POSTGRES_BIN_DIR"),
            ("valkey-server", ["valkey-server", "redis-server"], config?.valkey.binDirectory, "SAGEDEV_VALKEY_BIN_DIR"),
            ("node", ["node"], nil, "PATH"),
        ]
        out.line(out.paint("toolchain lookup: \(ToolchainInstaller.lookupOrder)", .dim))
        for (label, names, dir, key) in checks {
            if let hit = toolchain.locate(names, explicitDirectory: dir) {
                let p = hit.path
                let v = (try? Subprocess.run([p, "--version"], deadline: .after(seconds: 5)))?.stdoutText
                    .split(separator: "\n").first.map(String.init) ?? "?"
                var level = Level.ok
                if label == "postgres" && !v.contains(" 18.") { level = .warn }
                if label == "valkey-server" && !v.contains("v=8.") { level = .warn }
                report(level, label, "\(v) (\(p), from the \(hit.sourceDescription))",
                       fix: "sagedev targets PostgreSQL 18 and Valkey 8: run 'sagedev toolchain install'")
                if label == "postgres", let unreachable = ToolchainInstaller.unreachableByPostgresUser(p, config: config) {
                    report(.fail, "postgres user", unreachable.message, fix: unreachable.fix)
                }
            } else {
                report(label == "node" ? .warn : .fail, label, "not found",
                       fix: label == "node" ? "install Node.js 20 or later and put it on PATH"
                           : "run 'sagedev toolchain install' (installs it for your user in \(toolchain.userDirectory)), or set \(key) in .env")
            }
        }

        // Docker engine and Compose v2, and the runtime choice
        let env = context.environment
        let host = DockerEngineProbe.describeHost(env)
        if let version = try? DockerEngineProbe.serverVersion(environment: env, deadline: .after(seconds: 2)) {
            report(.ok, "docker engine", "Docker \(version) answers at \(host)")
        } else {
            report(.warn, "docker engine", "no engine answers at \(host)",
                   fix: "start Docker (or dockerd) to use the compose runtime; the native runtime needs none")
        }
        do {
            let compose = try ComposeInstallation.detect(environment: env, deadline: .after(seconds: 5))
            report(compose.warning == nil ? .ok : .warn, "compose", "\(compose.command.joined(separator: " ")) \(compose.version)",
                   fix: compose.warning ?? "")
        } catch {
            report(.warn, "compose", "\(error)", fix: "scripts/bootstrap.sh installs the Compose v2 plugin from Debian trixie's docker-compose package")
        }
        if let c = config {
            let choice = Stack.chooseRuntime(c, environment: env)
            let engineMissing = choice.runtime == .compose && !DockerEngineProbe.answers(environment: env, within: 2)
            report(engineMissing ? .fail : .ok, "runtime", "\(choice.runtime.rawValue): \(choice.reason)",
                   fix: "start the Docker engine, or set SAGEDEV_RUNTIME=native in .env")
        }

        // Extra services (SAGEDEV_SERVICES): each one's directory or image, readiness and start order
        if let c = config {
            let runtime = Stack.chooseRuntime(c, environment: env).runtime
            for spec in c.extraServices {
                let p = spec.id.envPrefix
                let deps = spec.dependsOn.map(\.id.rawValue).joined(separator: ", ")
                let after = deps.isEmpty ? "starts first" : "starts after \(deps)"
                let ready: String
                switch spec.probe {
                case .http(let path): ready = "ready when http://\(c.urlHost):\(spec.port ?? 0)\(path) answers"
                case .tcp: ready = "ready when port \(spec.port ?? 0) accepts"
                case .processAlive(let s): ready = "ready once it has run \(Int(s)) s"
                default: ready = "ready when its probe passes"
                }
                if let app = spec.app {
                    let dir = app.directory.hasPrefix("/") ? app.directory : paths.root + "/" + app.directory
                    let exists = FileDescriptor.isDirectory(dir)
                    report(exists ? .ok : .fail, "service \(spec.id)", "app in \(app.directory); \(ready); \(after)",
                           fix: "create \(dir) or set \(p)DIR in .env")
                } else if let ct = spec.container {
                    report(runtime == .compose ? .ok : .fail, "service \(spec.id)", "container \(ct.image); \(ready); \(after)",
                           fix: "a container service needs the compose runtime: start Docker and set SAGEDEV_RUNTIME=compose, or set \(p)KIND=app")
                }
            }
        }

        // Dev servers: what each app's adapter is, and what a refused app listens on instead.
        let daemonStatus: StatusReport? = {
            guard let client = try? DaemonClient.connect(paths, deadline: .after(milliseconds: 500)) else { return nil }
            return try? client.send(StatusRequest(), deadline: .after(seconds: 5))
        }()
        if let c = config {
            for spec in c.services.specs where spec.isApp {
                let s = spec.id
                let d = DevServerAdapter.detect(spec.app!, projectDirectory: c.projectDirectory)
                let live = daemonStatus?.service(s)
                if let live, live.state != .healthy, live.state != .stopped, let h = live.health, h.outcome != .ready,
                   h.reason.contains(" listens on ") {
                    report(.fail, s.rawValue, h.reason, fix: "see the end of the message above; then 'sagedev restart \(s.rawValue)'")
                } else {
                    report(.ok, s.rawValue, "dev server \(d.description)")
                }
                if !d.skippedOptions.isEmpty {
                    report(.warn, s.rawValue, "\(s.envPrefix)DEV_COMMAND is a compound shell command; sagedev adds nothing to it",
                           fix: "add \(d.skippedOptions.joined(separator: " ")) to the dev server's part of the command")
                }
            }
        }

        // Ports (ours are fine when our own daemon holds them)
        if let c = config {
            let ours = Set(c.services.serviceIDs.compactMap { PidRecord.read(paths.pidFile($0)).flatMap { $0.isAlive ? $0.pid : nil } })
            // Services this project's daemon runs (under compose their ports belong to docker-proxy, not to a pid of ours).
            let running: Set<String> = {
                guard let status = daemonStatus else { return [] }
                return Set(status.services.filter { $0.state != .stopped }.map(\.name.rawValue))
            }()
            for s in c.services.serviceIDs {
                guard let port = c.port(of: s) else { continue }
                if let conflict = PortCheck.check(host: c.bindAddress, port: port) {
                    let mine = running.contains(s.rawValue)
                        || conflict.owners.contains { $0.pid.map { ours.contains($0) || ours.contains(ProcFS.processGroup(pid: $0) ?? -1) } ?? false }
                    report(mine ? .ok : .fail, "port \(port)", mine ? "in use by this project's \(s.rawValue)" : conflict.description,
                           fix: "stop that process or set \(c.services[s]?.portKey ?? s.envPrefix + "PORT") in .env")
                } else {
                    report(.ok, "port \(port)", "free (\(s.rawValue))")
                }
            }
        }

        // inotify watch limit
        if let limit = FileDescriptor.readText("/proc/sys/fs/inotify/max_user_watches").flatMap({ Int($0.trimmed) }) {
            var needed = 0
            if let c = config {
                for dir in c.services.specs.compactMap(\.app?.directory) + [c.migrationsDirectory, c.seedsDirectory] {
                    needed += countDirectories(dir.hasPrefix("/") ? dir : paths.root + "/" + dir, limit: limit)
                }
            }
            report(needed * 2 > limit ? .warn : .ok, "inotify", "max_user_watches \(limit); the sources need about \(needed)",
                   fix: "sysctl fs.inotify.max_user_watches=\(max(524288, needed * 4))")
        }

        // Disk space
        if let free = FileDescriptor.availableBytes(onFileSystemOf: paths.root) {
            let gib = free / Double(1 << 30)
            report(gib < 1 ? .fail : (gib < 5 ? .warn : .ok), "disk", "\(Int(gib * 10) / 10) GiB free in \(paths.root)",
                   fix: "free some space: PostgreSQL data, backups and images need room")
        }
        return failed ? ExitCode.failure : ExitCode.success
    }

    /// Directories under `path` (each needs one inotify watch), skipping the directories the watcher skips.
    private func countDirectories(_ path: String, limit: Int) -> Int {
        guard let names = DirectoryScan.subdirectoryNames(of: path) else { return 0 }
        var n = 1
        for name in names {
            if ["node_modules", ".git", "dist", "build", ".sagedev"].contains(name) { continue }
            n += countDirectories(path + "/" + name, limit: limit)
            if n > limit { break }
        }
        return n
    }
}
