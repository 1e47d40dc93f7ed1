import Testing
import Glibc
import Foundation
import SageSystem

/// The sagedev executable built next to the test bundle.
enum SagedevBinary {
    static let path: String = {
        let exe = ProcessEnvironment.executablePath() ?? ""
        var dir = exe
        // …/debug/sagedevPackageTests.xctest (a file on Linux) → …/debug
        while !dir.isEmpty, !FileDescriptor.isExecutable(dir + "/sagedev") || dir.hasSuffix(".xctest") {
            guard let slash = dir.lastIndex(of: "/") else { break }
            dir = String(dir[..<slash])
        }
        return dir + "/sagedev"
    }()
}

/// The example's apps, made ready once per test run: node_modules filled from Debian's packages (the example's
/// own install command) and the backend compiled once, so that each project copies sources and a warm build
/// and links the shared node_modules instead of compiling and installing again.
enum PreparedApps {
    static let names = ["backend", "frontend", "worker"]
    /// The directory holding `apps/<name>` (sources and the backend's dist) and `modules/<name>/node_modules`.
    static let root: String = {
        let dir = makeTempDirectory("sagedev-apps")
        atexit { removeTree(PreparedApps.root) }
        do {
            let r = try Subprocess.run(["cp", "-R", Repo.root + "/examples/sage/apps", dir + "/"], deadline: .after(seconds: 60))
            guard r.status.isSuccess else { throw TestFailure("copy failed: \(r.stderrText)") }
            for name in names {
                let app = dir + "/apps/" + name
                _ = try Subprocess.run(["rm", "-rf", app + "/node_modules", app + "/dist", app + "/public/assets"], deadline: .after(seconds: 30))
                let link = try Subprocess.run([Repo.root + "/scripts/link-debian-node-modules", "--quiet"], workingDirectory: app,
                                              deadline: .after(seconds: 120))
                guard link.status.isSuccess else { throw TestFailure("link-debian-node-modules in \(name): \(link.stderrText)") }
                mkdir(dir + "/modules", 0o755)
                mkdir(dir + "/modules/" + name, 0o755)
                guard rename(app + "/node_modules", dir + "/modules/\(name)/node_modules") == 0 else { throw TestFailure("moving node_modules of \(name)") }
            }
            // tsc resolves the types through the app's node_modules.
            let backend = dir + "/apps/backend"
            guard symlink(dir + "/modules/backend/node_modules", backend + "/node_modules") == 0 else { throw TestFailure("symlink") }
            let tsc = try Subprocess.run(["tsc", "-p", "."], workingDirectory: backend, deadline: .after(seconds: 300))
            guard tsc.status.isSuccess else { throw TestFailure("tsc in the example backend failed: \(tsc.stdoutText)\(tsc.stderrText)") }
            unlink(backend + "/node_modules")
        } catch {
            preparationError = "\(error)"
        }
        return dir
    }()
    nonisolated(unsafe) static var preparationError: String?

    /// Copies the prepared apps into `project/apps`, each with its node_modules linked to the shared one.
    /// A checkout of the example (a git worktree) made ready like a copy: the backend's build and node_modules.
    static func equip(_ project: String, linkModules: Bool = true) throws {
        let dir = root
        if let e = preparationError { throw TestFailure("preparing the example apps: \(e)") }
        let r = try Subprocess.run(["cp", "-R", dir + "/apps/backend/dist", project + "/apps/backend/"], deadline: .after(seconds: 30))
        guard r.status.isSuccess else { throw TestFailure("copy failed: \(r.stderrText)") }
        for name in names where linkModules && !FileDescriptor.exists(project + "/apps/\(name)/node_modules") {
            guard symlink(dir + "/modules/\(name)/node_modules", project + "/apps/\(name)/node_modules") == 0 else {
                throw TestFailure("linking node_modules of \(name)")
            }
        }
    }

    /// Under compose, node_modules is the container's own volume, filled by the install command in the container:
    /// nothing is linked (a link to a host path would not resolve there).
    static func copy(into project: String, linkModules: Bool = true) throws {
        let dir = root
        if let e = preparationError { throw TestFailure("preparing the example apps: \(e)") }
        let r = try Subprocess.run(["cp", "-R", dir + "/apps", project + "/"], deadline: .after(seconds: 30))
        guard r.status.isSuccess else { throw TestFailure("copy failed: \(r.stderrText)") }
        for name in names where linkModules {
            guard symlink(dir + "/modules/\(name)/node_modules", project + "/apps/\(name)/node_modules") == 0 else {
                throw TestFailure("linking node_modules of \(name)")
            }
        }
    }
}

/// How the example backend runs in a test project.
enum BackendMode {
    /// `node --watch dist/server.js` on the warm build: the fastest start, for tests about something else.
    case compiled
    /// The example's own dev command: tsc --watch and node --watch on its output (the shape of Nest's start:dev).
    case typescript
    /// Tests/Fixtures/plain-backend under `node --watch src/server.js`: a dependency-free server whose source node
    /// loads directly, for tests about node --watch's own habits.
    case plain

    var devCommand: String {
        switch self {
        case .compiled: return "node --watch dist/server.js"
        case .typescript: return "[ -f dist/server.js ] || tsc -p .; tsc -p . --watch --preserveWatchOutput & exec node --watch dist/server.js"
        case .plain: return "node --watch src/server.js"
        }
    }
}

/// A copy of the example Sage stack in a temp directory, with its own free ports, driven through the real binary.
final class TestProject: @unchecked Sendable {
    let root: String
    let ports: (postgres: Int, valkey: Int, backend: Int, frontend: Int)
    let postgresPassword = "pg-pass;with,odd*chars!"
    let valkeyPassword = "vk-secret-42"

    /// Extra process environment for every `sagedev` run (not written to .env).
    let processEnvironment: [String: String]

    /// `checkout`: a directory that already holds the example (a git worktree), used as it is instead of a copy
    /// (its apps get the prepared node_modules and the backend's build); `ports`: the configured ports (fresh free
    /// ones by default); `worker`: the example's worker as an extra service (SAGEDEV_SERVICES=worker).
    init(runtime: String = "native", backend: BackendMode = .compiled, worker: Bool = false, extraEnv: [String: String] = [:],
         processEnvironment: [String: String] = [:],
         checkout: String? = nil, ports: (postgres: Int, valkey: Int, backend: Int, frontend: Int)? = nil) throws {
        root = checkout ?? makeTempDirectory("sagedev-proj")
        // Each project has its own instance registry unless the test shares one between projects.
        var processEnvironment = processEnvironment
        if processEnvironment["XDG_STATE_HOME"] == nil { processEnvironment["XDG_STATE_HOME"] = root + "/.sagedev/state" }
        self.processEnvironment = processEnvironment
        // Four different ports: the OS may hand out a port again once the probe socket that found it is closed.
        var picked: [Int] = []
        while picked.count < 4 { let port = freePort(); if !picked.contains(port) { picked.append(port) } }
        self.ports = ports ?? (picked[0], picked[1], picked[2], picked[3])
        if checkout == nil {
            let r = try Subprocess.run(["cp", "-R", Repo.root + "/examples/sage/db", root + "/"], deadline: .after(seconds: 30))
            guard r.status.isSuccess else { throw TestFailure("copy failed: \(r.stderrText)") }
            try PreparedApps.copy(into: root, linkModules: runtime != "compose")
        } else {
            try PreparedApps.equip(root, linkModules: runtime != "compose")
        }
        if backend == .plain {
            removeTree(root + "/apps/backend")
            let plain = try Subprocess.run(["cp", "-R", Repo.root + "/Tests/Fixtures/plain-backend", root + "/apps/backend"],
                                           deadline: .after(seconds: 30))
            guard plain.status.isSuccess else { throw TestFailure("copy failed: \(plain.stderrText)") }
        }
        var env = """
        SAGEDEV_PROJECT=sagetest
        SAGEDEV_RUNTIME=\(runtime)
        POSTGRES_USER=sage
        POSTGRES_PASSWORD='\(postgresPassword)'
        POSTGRES_DB=sage
        POSTGRES_PORT=\(self.ports.postgres)
        VALKEY_PASSWORD=\(valkeyPassword)
        VALKEY_PORT=\(self.ports.valkey)
        BACKEND_DIR=apps/backend
        BACKEND_DEV_COMMAND="\(backend.devCommand)"
        BACKEND_PORT=\(self.ports.backend)
        BACKEND_HEALTH_PATH=/health
        FRONTEND_DIR=apps/frontend
        FRONTEND_DEV_COMMAND="esbuild src/main.js --bundle --outdir=public/assets --servedir=public --watch=forever"
        FRONTEND_PORT=\(self.ports.frontend)
        FRONTEND_HEALTH_PATH=/
        SAGEDEV_POSTGRES_BIN_DIR=\(Repo.toolchainBin)
        SAGEDEV_VALKEY_BIN_DIR=\(Repo.toolchainBin)

        """
        if worker {
            env += "SAGEDEV_SERVICES=worker\nWORKER_DIR=apps/worker\nWORKER_DEV_COMMAND=\"node --watch src/worker.js\"\n"
        }
        if runtime == "compose" {
            // The containers fill their node_modules volumes from the Debian packages the test image carries.
            env += "BACKEND_INSTALL_COMMAND=link-debian-node-modules\nFRONTEND_INSTALL_COMMAND=link-debian-node-modules\n"
        }
        for (k, v) in extraEnv.sorted(by: { $0.key < $1.key }) { env += "\(k)=\(v)\n" }
        try FileDescriptor.writeFileAtomically(root + "/.env", Array(env.utf8), mode: 0o644)
    }

    /// Runs `sagedev ARGS` in the project directory.
    @discardableResult
    /// `environment` adds to `processEnvironment` for this run only (a daemon this run starts inherits it).
    func sagedev(_ args: [String], timeout: Double = 180, input: [UInt8] = [], environment: [String: String] = [:]) throws -> CompletedProcess {
        var env = ProcessEnvironment.current()
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "SAGEDEV_PROJECT_DIR")
        for (k, v) in processEnvironment { env[k] = v }
        for (k, v) in environment { env[k] = v }
        return try Subprocess.run([SagedevBinary.path] + args, environment: env, workingDirectory: root, input: input,
                                  deadline: .after(seconds: timeout))
    }

    /// `status --json`, parsed.
    func status() throws -> [String: Any] {
        let r = try sagedev(["status", "--json"], timeout: 30)
        guard let obj = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any] else {
            throw TestFailure("status --json printed no object: \(r.stdoutText) \(r.stderrText)")
        }
        return obj
    }

    func service(_ status: [String: Any], _ name: String) -> [String: Any] {
        (status["services"] as? [[String: Any]] ?? []).first { $0["name"] as? String == name } ?? [:]
    }

    /// Polls `status --json` until `condition` holds (deadline-bounded).
    func waitForStatus(_ deadline: Deadline, _ condition: ([String: Any]) -> Bool) -> [String: Any]? {
        var last: [String: Any]?
        let ok = waitUntil(deadline) {
            guard let s = try? status() else { return false }
            last = s
            return condition(s)
        }
        if !ok { lastUnmetStatus = last }
        return ok ? last : nil
    }

    /// The last status seen by a `waitForStatus` whose condition never held (for failure messages).
    var lastUnmetStatus: [String: Any]?
    var unmet: String {
        guard let s = lastUnmetStatus else { return "no status" }
        return (s["services"] as? [[String: Any]] ?? []).map { "\($0["name"] ?? "?"): \($0["state"] ?? "?") restarts=\($0["restarts"] ?? "?") \($0["reason"] ?? "")" }
            .joined(separator: "; ") + "\n" + (FileDescriptor.readText(root + "/.sagedev/logs/daemon.log") ?? "").suffix(3000)
    }

    func pidRecord(_ service: String) -> (pid: Int32, start: UInt64)? {
        guard let t = FileDescriptor.readText(root + "/.sagedev/run/\(service).pid") else { return nil }
        let p = t.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard p.count >= 2, let pid = Int32(p[0]), let st = UInt64(p[1]) else { return nil }
        return (pid, st)
    }

    /// Every live process whose command line mentions this project directory (services, daemon).
    func processesOfProject() -> [Int32] {
        ProcFS.allPids().filter { pid in
            guard pid != getpid(), let cmd = ProcFS.commandLine(pid: pid) else { return false }
            return cmd.contains { $0.contains(root) } || (ProcFS.processGroup(pid: pid).map { g in
                ["postgres", "valkey", "backend", "frontend"].contains { pidRecord($0)?.pid == g } } ?? false)
        }
    }

    deinit {
        _ = try? sagedev(["down"], timeout: 60)
        // Whatever survived a failed test: kill by pid file and by command line.
        let pidFiles = (try? FileManager.default.contentsOfDirectory(atPath: root + "/.sagedev/run")) ?? []
        let services = Set(["postgres", "valkey", "backend", "frontend"] + pidFiles.filter { $0.hasSuffix(".pid") }.map { String($0.dropLast(4)) })
        for s in services { if let r = pidRecord(s) { kill(-r.pid, SIGKILL); kill(r.pid, SIGKILL) } }
        for pid in processesOfProject() { kill(pid, SIGKILL) }
        recordDaemonCrash()
        removeTree(root)
    }

    /// A daemon must never crash, whatever a test did to it: a Swift runtime trap in daemon.log fails the test that
    /// owned the project, and the log is kept in /tmp for study.
    func recordDaemonCrash() {
        guard let log = FileDescriptor.readText(root + "/.sagedev/logs/daemon.log"),
              log.contains("Fatal error") || log.contains("Program crashed") || log.contains("Current stack trace") else { return }
        let kept = "/tmp/sagedev-daemon-crash-\(getpid())-\(UInt64(wallClockSeconds() * 1000)).log"
        try? FileDescriptor.writeFileAtomically(kept, Array(log.utf8), mode: 0o644)
        Issue.record("the daemon of \(root) crashed (log kept in \(kept)):\n\(log.suffix(4000))")
    }
}
