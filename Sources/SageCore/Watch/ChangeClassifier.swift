/// The absolute paths the watcher covers and the classifier sorts changes into. Built from `Config`
/// (relative directories resolve against the project directory) or directly in tests.
public struct WatchLayout: Sendable, Equatable {
    /// An app service and its source directory (absolute, normalized).
    public struct App: Sendable, Equatable {
        public var service: ServiceID
        public var directory: String
        public init(_ service: ServiceID, _ directory: String) { self.service = service; self.directory = directory }
    }
    /// Every app of the stack in start order: backend, frontend, then the extra apps.
    public var apps: [App]
    public var migrationsDirectory: String?
    public var seedsDirectory: String?
    public var envFile: String?

    public var backendDirectory: String? { apps.first { $0.service == .backend }?.directory }
    public var frontendDirectory: String? { apps.first { $0.service == .frontend }?.directory }

    public init(apps: [App], migrationsDirectory: String?, seedsDirectory: String?, envFile: String?) {
        self.apps = apps.map { App($0.service, WatchLayout.normalize($0.directory)) }
        self.migrationsDirectory = migrationsDirectory.map(WatchLayout.normalize)
        self.seedsDirectory = seedsDirectory.map(WatchLayout.normalize)
        self.envFile = envFile.map(WatchLayout.normalize)
    }

    public init(backendDirectory: String?, frontendDirectory: String?, migrationsDirectory: String?,
                seedsDirectory: String?, envFile: String?) {
        let apps = [backendDirectory.map { App(.backend, $0) }, frontendDirectory.map { App(.frontend, $0) }].compactMap { $0 }
        self.init(apps: apps, migrationsDirectory: migrationsDirectory, seedsDirectory: seedsDirectory, envFile: envFile)
    }

    public init(config: Config) {
        let base = config.projectDirectory
        let apps = config.services.specs.compactMap { spec in
            spec.app.flatMap { WatchLayout.resolve($0.directory, against: base) }.map { App(spec.id, $0) }
        }
        self.init(apps: apps,
                  migrationsDirectory: WatchLayout.resolve(config.migrationsDirectory, against: base),
                  seedsDirectory: WatchLayout.resolve(config.seedsDirectory, against: base),
                  envFile: WatchLayout.resolve(".env", against: base))
    }

    /// The directory trees to watch recursively, without duplicates or trees nested in another.
    public var trees: [String] {
        var unique = [String]()
        for dir in apps.map(\.directory) + [migrationsDirectory, seedsDirectory].compactMap({ $0 })
        where !unique.contains(dir) {
            unique.append(dir)
        }
        return unique.filter { dir in !unique.contains { $0 != dir && WatchLayout.isSameOrInside(dir, $0) } }
    }

    /// `path` made absolute against `base` and normalized; "" or nil stays nil.
    public static func resolve(_ path: String?, against base: String) -> String? {
        guard let path, !path.isEmpty else { return nil }
        return normalize(path.hasPrefix("/") ? path : base + "/" + path)
    }

    /// Collapses `//` and `.` segments, resolves `..`, drops a trailing `/`. Purely textual (no symlinks).
    public static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts = [Substring]()
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            if part == ".." && absolute { continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// Whether `path` is `directory` or lies below it.
    public static func isSameOrInside(_ path: String, _ directory: String) -> Bool {
        if directory == "/" { return path.hasPrefix("/") }
        return path == directory || (path.hasPrefix(directory) && path.utf8.dropFirst(directory.utf8.count).first == UInt8(ascii: "/"))
    }
}

/// What a batch of changes asks the engine to do. The classifier only reports; the engine decides how
/// (reload mode, runtime) to carry it out.
public enum WatchAction: Sendable, Hashable, CustomStringConvertible {
    /// A source file of an app service changed: reload (self) or restart it.
    case sourceChanged(ServiceID, file: String)
    /// A manifest or lockfile changed: run the install command, then restart.
    case manifestChanged(ServiceID, file: String)
    /// `.env` changed: reload and revalidate the configuration.
    case envChanged
    /// A migration changed: apply migrations, mark the reset template stale.
    case migrationsChanged(file: String)
    /// A seed changed: mark the reset template stale.
    case seedsChanged(file: String)

    public var description: String {
        switch self {
        case .sourceChanged(let s, let f): return "\(s.rawValue): source changed (\(f))"
        case .manifestChanged(let s, let f): return "\(s.rawValue): manifest changed (\(f))"
        case .envChanged: return ".env changed"
        case .migrationsChanged(let f): return "migrations changed (\(f))"
        case .seedsChanged(let f): return "seeds changed (\(f))"
        }
    }
}

/// Sorts a debounced batch of changed paths into actions. Pure: no I/O, no clock.
///
/// Coalescing, one action per target per batch:
/// - per app service, a manifest change wins over source changes (install + restart covers a reload);
///   the file named is the first of its kind in the batch;
/// - one `.envChanged`, one `.migrationsChanged`, one `.seedsChanged` at most.
/// Actions come in the order the engine should apply them: `.env`, migrations, seeds, then the apps in start order.
/// When directories nest (migrations inside the backend directory), the deepest one claims the path.
public struct ChangeClassifier: Sendable, Equatable {
    /// File names that mean "dependencies changed", at any depth of a service directory (workspaces).
    public static let defaultManifestNames: Set<String> = [
        "package.json", "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "pnpm-workspace.yaml",
        "yarn.lock", "bun.lock", "bun.lockb",
    ]

    public var layout: WatchLayout
    public var manifestNames: Set<String>

    public init(layout: WatchLayout, manifestNames: Set<String> = ChangeClassifier.defaultManifestNames) {
        self.layout = layout
        self.manifestNames = manifestNames
    }

    public func classify(_ batch: [ChangedPath]) -> [WatchAction] {
        var envChanged = false
        var migration: String?
        var seed: String?
        var source: [ServiceID: String] = [:]
        var manifest: [ServiceID: String] = [:]

        for change in batch {
            let path = WatchLayout.normalize(change.path)
            if let env = layout.envFile, path == env {
                envChanged = true
                continue
            }
            guard let owner = owner(of: path) else { continue }
            // A new directory brings nothing by itself; the files inside it arrive as their own changes.
            if change.isDirectory && change.kind == .created { continue }
            switch owner.target {
            case .migrations: if migration == nil { migration = path }
            case .seeds: if seed == nil { seed = path }
            case .service(let service):
                let name = path.split(separator: "/").last.map(String.init) ?? path
                if !change.isDirectory && manifestNames.contains(name) {
                    if manifest[service] == nil { manifest[service] = path }
                } else if source[service] == nil {
                    source[service] = path
                }
            }
        }

        var actions = [WatchAction]()
        if envChanged { actions.append(.envChanged) }
        if let migration { actions.append(.migrationsChanged(file: migration)) }
        if let seed { actions.append(.seedsChanged(file: seed)) }
        for service in layout.apps.map(\.service) {
            if let file = manifest[service] {
                actions.append(.manifestChanged(service, file: file))
            } else if let file = source[service] {
                actions.append(.sourceChanged(service, file: file))
            }
        }
        return actions
    }

    /// Convenience for plain paths (treated as modified files).
    public func classify(paths: [String]) -> [WatchAction] {
        classify(paths.map { ChangedPath($0, .modified) })
    }

    private enum Target { case service(ServiceID), migrations, seeds }

    /// The deepest configured directory containing `path`.
    private func owner(of path: String) -> (target: Target, directory: String)? {
        let candidates: [(Target, String?)] = layout.apps.map { (.service($0.service), $0.directory) } + [
            (.migrations, layout.migrationsDirectory), (.seeds, layout.seedsDirectory),
        ]
        var best: (target: Target, directory: String)?
        for (target, directory) in candidates {
            guard let directory, WatchLayout.isSameOrInside(path, directory) else { continue }
            if best == nil || directory.count > best!.directory.count { best = (target, directory) }
        }
        return best
    }
}
