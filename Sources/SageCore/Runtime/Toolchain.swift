import SageSystem

/// Finds the server binaries: the directory named in .env, then `.sagedev/toolchain/bin` in the project or any
/// directory above it (where scripts/bootstrap.sh installs them), then PATH.
public struct Toolchain: Sendable {
    public let projectDirectory: String
    public let path: String

    public init(projectDirectory: String, path: String?) {
        self.projectDirectory = projectDirectory
        self.path = path ?? "/usr/local/bin:/usr/bin:/bin"
    }

    public func find(_ names: [String], explicitDirectory: String?) -> String? {
        var dirs: [String] = []
        if let d = explicitDirectory, !d.isEmpty { dirs.append(d.hasPrefix("/") ? d : projectDirectory + "/" + d) }
        var dir = projectDirectory
        while true {
            dirs.append(dir + "/.sagedev/toolchain/bin")
            guard let slash = dir.lastIndex(of: "/"), dir != "/" else { break }
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
            if dir == "/" { dirs.append("/.sagedev/toolchain/bin"); break }
        }
        for d in dirs { for n in names where FileDescriptor.isExecutable(d + "/" + n) { return d + "/" + n } }
        for n in names { if let p = ProcessEnvironment.which(n, path: path) { return p } }
        return nil
    }

    public func require(_ names: [String], explicitDirectory: String?, key: String, what: String) throws -> String {
        if let p = find(names, explicitDirectory: explicitDirectory) { return p }
        throw RuntimeError(nil, "\(names[0]) (\(what)) was not found in \(explicitDirectory.map { "\($0), " } ?? "").sagedev/toolchain/bin or PATH: run scripts/bootstrap.sh to install it, or set \(key) in .env to the directory that holds it")
    }

    public func postgres(_ c: Config, _ name: String = "postgres") throws -> String {
        try require([name], explicitDirectory: c.postgres.binDirectory, key: "SAGEDEV_POSTGRES_BIN_DIR", what: "PostgreSQL 18")
    }
    public func valkeyServer(_ c: Config) throws -> String {
        try require(["valkey-server", "redis-server"], explicitDirectory: c.valkey.binDirectory, key: "SAGEDEV_VALKEY_BIN_DIR", what: "Valkey 8")
    }
}
