import Foundation
import SageSystem

/// An app found in a repository, with the reasons for each decision.
public struct DetectedApp: Sendable, Equatable {
    public var role: AppRole
    /// Relative to the repository root ("." for the root itself).
    public var directory: String
    /// "package.json depends on @nestjs/core".
    public var reason: String
    public var framework: FrameworkRule?
    public var packageManager: PackageManagerRule
    /// "pnpm from pnpm-lock.yaml".
    public var packageManagerReason: String
    public var devCommand: String
    public var devReason: String
    public var installCommand: String
}

/// What `sagedev init` decided about a repository, and what it could not.
public struct InitPlan: Sendable {
    public var root: String
    public var projectName: String
    public var backend: DetectedApp?
    public var frontend: DetectedApp?
    /// Apps found beyond the one chosen for a role.
    public var otherApps: [DetectedApp]
    /// key → (value, why), for the database keys.
    public var database: [(key: String, value: String, reason: String)]
    /// key → what to set it to.
    public var undecided: [(key: String, advice: String)]

    public var foundAnyApp: Bool { backend != nil || frontend != nil }

    /// One line per detection, with its reason, for the person at the terminal.
    public var reportLines: [String] {
        var lines: [String] = []
        for app in [backend, frontend].compactMap({ $0 }) {
            lines.append("\(app.role.rawValue): \(app.directory) (\(app.reason); \(app.packageManagerReason))")
            lines.append("  dev command: \(app.devCommand) (\(app.devReason))")
            lines.append("  install command: \(app.installCommand)")
        }
        for app in otherApps {
            lines.append("also found: \(app.directory), a \(app.role.rawValue) (\(app.reason)); set \(app.role == .backend ? "BACKEND_DIR" : "FRONTEND_DIR") to use it instead")
        }
        for d in database { lines.append("\(d.key): \(d.value) (\(d.reason))") }
        return lines
    }
}

/// Reads a repository and decides the `.env` values, following the tables in InitRules.swift.
public enum ProjectScanner {
    public static func scan(_ root: String) -> InitPlan {
        var candidates: [DetectedApp] = []
        var seen = Set<String>()
        for layout in AppLayout.all {
            let dirs: [String]
            if layout.children {
                dirs = (FileTree.list(root + "/" + layout.path) ?? []).filter { !$0.hasPrefix(".") }.map { layout.path + "/" + $0 }
            } else {
                dirs = [layout.path]
            }
            for dir in dirs where !seen.contains(dir) {
                seen.insert(dir)
                if let app = classify(root: root, directory: dir) { candidates.append(app) }
            }
        }
        let backend = candidates.first { $0.role == .backend }
        let frontend = candidates.first { $0.role == .frontend }
        let others = candidates.filter { $0 != backend && $0 != frontend }

        var undecided: [(String, String)] = []
        if backend == nil {
            undecided.append(("BACKEND_DIR", "no backend found (a package.json depending on \(names(.backend))); set BACKEND_DIR and BACKEND_DEV_COMMAND"))
        } else {
            undecided.append(("BACKEND_HEALTH_PATH", "assumed /health; set it to a path the backend answers with 2xx or 3xx once it is up"))
        }
        if frontend == nil {
            undecided.append(("FRONTEND_DIR", "no frontend found (a package.json depending on \(names(.frontend))); set FRONTEND_DIR and FRONTEND_DEV_COMMAND"))
        }

        var database: [(String, String, String)] = []
        if let b = backend {
            let dir = b.directory == "." ? root : root + "/" + b.directory
            let manifest = packageJSON(dir + "/package.json") ?? [:]
            for tool in MigrationToolRule.all where FileDescriptor.exists(dir + "/" + tool.marker) {
                database.append(("SAGEDEV_MIGRATE_COMMAND", "\(b.packageManager.exec) \(tool.migrate)",
                                 "\(relative(b.directory, tool.marker)) exists"))
                if lookup(manifest, tool.seedEntry) != nil {
                    database.append(("SAGEDEV_SEED_COMMAND", "\(b.packageManager.exec) \(tool.seed)",
                                     "\(tool.seedEntry) in \(relative(b.directory, "package.json"))"))
                }
            }
        }
        var sqlKeys = Set<String>()
        for rule in SQLDirectoryRule.all where !sqlKeys.contains(rule.key) {
            let path = root + "/" + rule.path
            if FileDescriptor.isDirectory(path) {
                let n = (FileTree.list(path) ?? []).filter { $0.hasSuffix(".sql") }.count
                database.append((rule.key, rule.path, "\(n) .sql file\(n == 1 ? "" : "s") in \(rule.path)/"))
                sqlKeys.insert(rule.key)
            } else if rule.path.hasSuffix(".sql"), FileDescriptor.exists(path) {
                let dir = String(rule.path[..<(rule.path.lastIndex(of: "/") ?? rule.path.startIndex)])
                database.append((rule.key, dir, "\(rule.path) exists (the .sql files directly in \(dir)/ are applied)"))
                sqlKeys.insert(rule.key)
            }
        }
        if !database.contains(where: { $0.0 == "SAGEDEV_MIGRATE_COMMAND" }) && !sqlKeys.contains("SAGEDEV_MIGRATIONS_DIR") {
            undecided.append(("SAGEDEV_MIGRATIONS_DIR", "no migrations found (\(SQLDirectoryRule.all.filter { $0.key == "SAGEDEV_MIGRATIONS_DIR" }.map(\.path).joined(separator: ", ")), or Prisma); set SAGEDEV_MIGRATIONS_DIR or SAGEDEV_MIGRATE_COMMAND"))
        }
        return InitPlan(root: root, projectName: ConfigLoader.projectName(fromDirectory: root), backend: backend,
                        frontend: frontend, otherApps: others, database: database, undecided: undecided)
    }

    static func names(_ role: AppRole) -> String {
        FrameworkRule.all.filter { $0.role == role }.map(\.package).joined(separator: ", ")
    }

    static func relative(_ dir: String, _ file: String) -> String { dir == "." ? file : dir + "/" + file }

    /// An app at `directory` (relative to root), when its package.json says what it is.
    static func classify(root: String, directory: String) -> DetectedApp? {
        let dir = directory == "." ? root : root + "/" + directory
        guard let manifest = packageJSON(dir + "/package.json") else { return nil }
        let deps = Set(((manifest["dependencies"] as? [String: Any]) ?? [:]).keys)
            .union(((manifest["devDependencies"] as? [String: Any]) ?? [:]).keys)
        let scripts = (manifest["scripts"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String }
        let (pm, pmReason) = packageManager(root: root, directory: directory)

        let role: AppRole, reason: String, framework: FrameworkRule?
        if let rule = FrameworkRule.all.first(where: { deps.contains($0.package) }) {
            role = rule.role; framework = rule
            reason = "package.json depends on \(rule.package)"
        } else if let name = directory.split(separator: "/").last.map(String.init),
                  let rule = DirectoryNameRule.all.first(where: { $0.names.contains(name) }), scripts["dev"] != nil {
            role = rule.role; framework = nil
            reason = "no known framework in package.json; the directory is named \(name) and has a dev script"
        } else {
            return nil
        }
        let scriptNames = framework?.devScripts ?? ["dev"]
        let devCommand: String, devReason: String
        if let script = scriptNames.first(where: { scripts[$0] != nil }) {
            var command = "\(pm.run) \(script)"
            var why = "the \(script) script"
            if let f = framework, !f.adapterArguments.isEmpty {
                command += (pm.argumentSeparator.isEmpty ? "" : " " + pm.argumentSeparator) + " " + f.adapterArguments
                why += ", with \(f.adapterArguments.replacingOccurrences(of: "\"", with: "")): \(f.adapterReason)"
            }
            devCommand = command; devReason = why
        } else {
            devCommand = "\(pm.run) \(scriptNames[0])"
            devReason = "package.json has no \(scriptNames.joined(separator: " or ")) script: add one, or set \(role == .backend ? "BACKEND" : "FRONTEND")_DEV_COMMAND"
        }
        return DetectedApp(role: role, directory: directory, reason: reason, framework: framework, packageManager: pm,
                           packageManagerReason: pmReason, devCommand: devCommand, devReason: devReason,
                           installCommand: pm.install)
    }

    /// The package manager from the nearest lockfile, in the app's directory or above it up to the root.
    static func packageManager(root: String, directory: String) -> (PackageManagerRule, String) {
        var rel = directory
        while true {
            let dir = rel == "." ? root : root + "/" + rel
            for rule in PackageManagerRule.all {
                if let lock = rule.lockfiles.first(where: { FileDescriptor.exists(dir + "/" + $0) }) {
                    return (rule, "\(rule.name) from \(relative(rel, lock))")
                }
            }
            if rel == "." { break }
            rel = rel.contains("/") ? String(rel[..<rel.lastIndex(of: "/")!]) : "."
        }
        return (PackageManagerRule.fallback, "npm: no lockfile found (\(PackageManagerRule.all.flatMap(\.lockfiles).joined(separator: ", ")))")
    }

    static func packageJSON(_ path: String) -> [String: Any]? {
        guard let bytes = FileDescriptor.readFile(path, limit: 4 << 20),
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        return object
    }

    /// A dotted path ("prisma.seed") in a JSON object.
    static func lookup(_ object: [String: Any], _ dotted: String) -> Any? {
        var current: Any = object
        for part in dotted.split(separator: ".") {
            guard let o = current as? [String: Any], let next = o[String(part)] else { return nil }
            current = next
        }
        return current
    }
}
