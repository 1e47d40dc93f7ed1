import Glibc
import SageSystem

/// Where the repository and its bootstrap toolchain are (tests fail, not skip, when the toolchain is missing).
enum Repo {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)  // Tests/IntegrationTests/Support/TestServers.swift
        return parts.joined(separator: "/")
    }()
    static let toolchainBin = root + "/.sagedev/toolchain/bin"

    static func tool(_ name: String) throws -> String {
        let p = toolchainBin + "/" + name
        guard FileDescriptor.isExecutable(p) else {
            throw TestFailure("\(p) is missing: run scripts/bootstrap.sh (the test command does this)")
        }
        return p
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A fresh temporary directory, traversable by the unprivileged postgres user.
func makeTempDirectory(_ prefix: String = "sagedev-test") -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    let dir = String(cString: mkdtemp(&template)!)
    chmod(dir, 0o755)
    return dir
}

func removeTree(_ path: String) {
    _ = try? Subprocess.run(["rm", "-rf", path], deadline: .after(seconds: 30))
}

/// A port nobody listens on right now (the OS picks it; it stays free in practice for the test's lifetime).
func freePort() -> Int {
    let l = try! Listener.tcp(port: 0)
    defer { l.close() }
    return l.port
}

/// Postgres refuses to run as root: when we are root, its commands run as the `sagedev` OS user.
func asPostgresUser(_ argv: [String]) -> [String] {
    getuid() == 0 ? ["setpriv", "--reuid=sagedev", "--regid=sagedev", "--clear-groups", "--"] + argv : argv
}

/// Waits for a condition, re-checking every few ms, until a deadline. Returns whether it became true.
@discardableResult
func waitUntil(_ deadline: Deadline, _ condition: () -> Bool) -> Bool {
    while !deadline.hasPassed {
        if condition() { return true }
        var p = pollfd(fd: -1, events: 0, revents: 0)
        _ = poll(&p, 0, 5)  // a timed wait between checks, never a busy loop
    }
    return condition()
}

/// A real PostgreSQL 18 server on a free loopback port, in a temp directory; stopped by pid.
final class TestPostgres: @unchecked Sendable {
    enum Auth: String { case trust, password, md5, scram = "scram-sha-256" }
    let directory: String
    let port: Int
    let user: String
    let password: String
    let database: String
    let auth: Auth
    private(set) var process: ChildProcess?
    var dataDirectory: String { directory + "/data" }
    var logPath: String { directory + "/postgres.log" }
    var socketDirectory: String { directory + "/sock" }

    private init(directory: String, port: Int, user: String, password: String, database: String, auth: Auth) {
        self.directory = directory; self.port = port; self.user = user; self.password = password
        self.database = database; self.auth = auth
    }

    /// initdb (with the given auth method for TCP connections) and, unless `start` is false, start the server.
    static func make(auth: Auth = .scram, user: String = "sage", password: String = "s3cret pw", database: String = "sage",
                     start: Bool = true) throws -> TestPostgres {
        let pg = TestPostgres(directory: makeTempDirectory("sagedev-pg"), port: freePort(), user: user,
                              password: password, database: database, auth: auth)
        try pg.initialise()
        if start { try pg.start() }
        return pg
    }

    private func initialise() throws {
        let pwfile = directory + "/pwfile"
        try FileDescriptor.writeFileAtomically(pwfile, Array(password.utf8), mode: 0o600)
        try FileDescriptor.makeDirectories(socketDirectory, mode: 0o755)
        if getuid() == 0 {
            _ = try Subprocess.run(["chown", "-R", "sagedev:sagedev", directory], deadline: .after(seconds: 10))
        }
        // md5 needs the role's password stored as an md5 hash; everything else stores SCRAM.
        let encryption = auth == .md5 ? "md5" : "scram-sha-256"
        let r = try Subprocess.run(asPostgresUser([try Repo.tool("initdb"), "-D", dataDirectory, "-U", user,
                                                   "--pwfile=\(pwfile)", "--auth-local=trust", "--auth-host=\(auth.rawValue)",
                                                   "--no-sync", "--no-instructions", "-c", "password_encryption=\(encryption)"]),
                                   deadline: .after(seconds: 120))
        unlink(pwfile)
        guard r.status.isSuccess else { throw TestFailure("initdb failed: \(r.stderrText)") }
        // The app database, created in single-user mode so the server need not be up yet.
        let sql = "CREATE DATABASE \"\(database)\";\n"
        if database != "postgres" {
            let c = try Subprocess.run(asPostgresUser([try Repo.tool("postgres"), "--single", "-D", dataDirectory, "postgres"]),
                                       input: Array(sql.utf8), deadline: .after(seconds: 60))
            guard c.status.isSuccess else { throw TestFailure("create database failed: \(c.stderrText)") }
        }
    }

    func start() throws {
        let child = try Spawner.spawn(SpawnSpec(
            executable: "",
            arguments: asPostgresUser([try Repo.tool("postgres"), "-D", dataDirectory, "-p", String(port),
                                       "-h", "127.0.0.1", "-k", socketDirectory, "-c", "fsync=off"]),
            environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"],
            stdout: .file(logPath, append: true), stderr: .file(logPath, append: true)).resolvingExecutable())
        process = child
    }

    /// Blocks until the server's own log says it accepts connections (the readiness ground truth).
    func waitForReadyLine(deadline: Deadline = .after(seconds: 60)) throws {
        guard waitUntil(deadline, { (FileDescriptor.readText(logPath) ?? "").contains("ready to accept connections") }) else {
            throw TestFailure("postgres did not become ready: \(FileDescriptor.readText(logPath) ?? "")")
        }
    }

    /// Runs SQL with the toolchain's psql over the Unix socket (trust), as the superuser.
    @discardableResult
    func psql(_ sql: String, database db: String? = nil) throws -> String {
        let r = try Subprocess.run([try Repo.tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                    "-h", socketDirectory, "-p", String(port), "-U", user, "-d", db ?? database, "-c", sql],
                                   environment: ["PATH": "/usr/bin:/bin"], deadline: .after(seconds: 30))
        guard r.status.isSuccess else { throw TestFailure("psql failed: \(r.stderrText)") }
        return r.stdoutText
    }

    func stop() {
        process?.terminate(.postgresFast(graceMilliseconds: 5000))
        process = nil
    }

    deinit {
        stop()
        removeTree(directory)
    }
}

/// A real Valkey 8 server on a free loopback port, with or without requirepass.
final class TestValkey: @unchecked Sendable {
    let directory: String
    let port: Int
    let password: String?
    private(set) var process: ChildProcess?
    var logPath: String { directory + "/valkey.log" }

    private init(directory: String, port: Int, password: String?) {
        self.directory = directory; self.port = port; self.password = password
    }

    static func make(password: String? = nil, start: Bool = true) throws -> TestValkey {
        let v = TestValkey(directory: makeTempDirectory("sagedev-vk"), port: freePort(), password: password)
        if start { try v.start() }
        return v
    }

    func start() throws {
        var args = [try Repo.tool("valkey-server"), "--port", String(port), "--bind", "127.0.0.1", "--dir", directory,
                    "--save", "", "--appendonly", "no", "--logfile", logPath]
        if let password { args += ["--requirepass", password] }
        process = try Spawner.spawn(SpawnSpec(executable: args[0], arguments: args, environment: ["PATH": "/usr/bin:/bin"],
                                              stdout: .null, stderr: .file(logPath, append: true)))
    }

    func waitForReadyLine(deadline: Deadline = .after(seconds: 30)) throws {
        guard waitUntil(deadline, { (FileDescriptor.readText(logPath) ?? "").contains("Ready to accept connections") }) else {
            throw TestFailure("valkey did not become ready: \(FileDescriptor.readText(logPath) ?? "")")
        }
    }

    /// Runs valkey-cli against the server (the real client).
    func cli(_ args: [String]) throws -> CompletedProcess {
        var argv = [try Repo.tool("valkey-cli"), "-h", "127.0.0.1", "-p", String(port), "--no-auth-warning"]
        if let password { argv += ["-a", password] }
        return try Subprocess.run(argv + args, deadline: .after(seconds: 10))
    }

    func stop() {
        process?.terminate(.standard(graceMilliseconds: 3000))
        process = nil
    }

    deinit {
        stop()
        removeTree(directory)
    }
}

extension SpawnSpec {
    /// Resolves argv[0] through PATH into `executable`.
    func resolvingExecutable() -> SpawnSpec {
        var s = self
        s.executable = ProcessEnvironment.which(arguments[0]) ?? arguments[0]
        return s
    }
}
