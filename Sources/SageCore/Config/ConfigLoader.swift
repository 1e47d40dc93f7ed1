import SageSystem
import SageWire

/// The outcome of reading a project's configuration: the value when there is no error, and every issue.
public struct ConfigReport: Sendable, Equatable {
    public var config: Config?
    public var issues: [ConfigIssue]
    public var errors: [ConfigIssue] { issues.filter(\.isError) }
    public var warnings: [ConfigIssue] { issues.filter { !$0.isError } }
    /// Set when `.env` itself is missing or unreadable.
    public var fileProblem: ConfigError.Code?
    public init(config: Config?, issues: [ConfigIssue], fileProblem: ConfigError.Code? = nil) {
        self.config = config; self.issues = issues; self.fileProblem = fileProblem
    }
}

/// Builds a `Config` from the project's `.env` and the process environment, as a pipeline:
/// parse (Compose's `.env` rules), apply defaults, then validate while collecting every issue.
///
/// Choices:
/// - A missing `.env` is an error (code `missingEnvFile`) that says to copy the documented template;
///   the generated compose file reads its secrets from `.env`, so running without one would fail later.
/// - A key's value is the process environment's when set there, else the file's, as Compose does;
///   empty or missing means the key's default.
/// - POSTGRES_PASSWORD is required and not empty. VALKEY_PASSWORD must be present; empty runs Valkey
///   without `requirepass` (with a warning).
/// - Unknown `SAGEDEV_*` keys in the file are errors with a suggestion. Every other unknown key is an
///   application value, passed through to the backend and frontend (never `COMPOSE_*` or `DOCKER_*`,
///   which configure Compose itself).
public enum ConfigLoader {
    public static let envFileName = ".env"
    /// Templates looked for when `.env` is missing, to tell the user what to copy.
    public static let templateNames = ["env.example", ".env.example"]

    /// Loads and validates; throws with every issue when anything is wrong. Warnings are dropped: use
    /// `check` to see them.
    public static func load(projectDirectory: String, environment: [String: String]) throws(ConfigError) -> Config {
        let report = check(projectDirectory: projectDirectory, environment: environment)
        if let config = report.config { return config }
        throw ConfigError(report.fileProblem ?? .invalid, issues: report.issues)
    }

    /// Reads `<projectDirectory>/.env` and returns the configuration (nil on any error) with all issues, placed in
    /// `placement` (its ports moved to the slot, its compose name the instance's).
    public static func check(projectDirectory: String, environment: [String: String],
                             placement: Placement = .configured) -> ConfigReport {
        let dir = normalise(projectDirectory)
        let path = (dir == "/" ? "" : dir) + "/" + envFileName
        guard FileDescriptor.exists(path) else {
            let template = templateNames.first { FileDescriptor.exists((dir == "/" ? "" : dir) + "/" + $0) }
            let hint = template.map { "create it from the documented template: cp \($0) \(envFileName)" }
                ?? "create it with at least POSTGRES_PASSWORD and VALKEY_PASSWORD (sagedev's env.example documents every key)"
            return ConfigReport(config: nil, issues: [ConfigIssue(file: path, "no \(envFileName) in \(dir); \(hint)")],
                                fileProblem: .missingEnvFile)
        }
        guard !FileDescriptor.isDirectory(path), let bytes = FileDescriptor.readFile(path) else {
            return ConfigReport(config: nil, issues: [ConfigIssue(file: path, "cannot read \(path); check that it is a readable file")],
                                fileProblem: .unreadableEnvFile)
        }
        return resolve(text: String(decoding: bytes, as: UTF8.self), file: path, projectDirectory: dir,
                       environment: environment, placement: placement)
    }

    /// The pure pipeline over the text of a `.env` file (no I/O).
    public static func resolve(text: String, file: String, projectDirectory: String,
                               environment: [String: String], placement: Placement = .configured) -> ConfigReport {
        var b = Builder(document: DotEnv.parse(text, environment: environment), file: file,
                        projectDirectory: normalise(projectDirectory), environment: environment)
        let configured = b.build()
        guard placement != .configured, let base = configured.config else { return configured }
        // The one place a slot applies: every service's port key is set to its moved port as if the process
        // environment said so, and the file is read again, so that whatever `.env` derives from a port
        // (`API_URL=http://localhost:${BACKEND_PORT}`) follows it as well as sagedev's own URLs.
        let moved = environment.merging(placement.portOverrides(for: base)) { _, new in new }
        var p = Builder(document: DotEnv.parse(text, environment: moved), file: file,
                        projectDirectory: normalise(projectDirectory), environment: moved)
        var report = p.build()
        report.config?.projectName = placement.project ?? base.projectName
        report.config?.placement = placement
        return report
    }

    static func normalise(_ dir: String) -> String {
        var d = dir.isEmpty ? "." : dir
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        return d
    }

    /// A Compose project name from a directory name: lowercase a-z, 0-9, '-' and '_', starting with a
    /// letter or digit (Compose's own rule).
    public static func projectName(fromDirectory dir: String) -> String {
        let base = dir.split(separator: "/").last.map(String.init) ?? ""
        var out = ""
        for c in base.lowercased().unicodeScalars {
            switch c {
            case "a"..."z", "0"..."9", "_", "-": out.unicodeScalars.append(c)
            default: out += "-"
            }
        }
        while let f = out.unicodeScalars.first, !(("a"..."z").contains(f) || ("0"..."9").contains(f)) {
            out.removeFirst()
        }
        return out.isEmpty ? "sagedev" : out
    }

    /// Keys that configure Compose or Docker themselves; never passed to the apps.
    static func isToolKey(_ k: String) -> Bool { k.hasPrefix("COMPOSE_") || k.hasPrefix("DOCKER_") }

    /// A name Compose can interpolate and a shell can export.
    static func isPortableName(_ k: String) -> Bool {
        guard let f = k.unicodeScalars.first, f == "_" || ("A"..."Z").contains(f) || ("a"..."z").contains(f) else { return false }
        return k.unicodeScalars.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }

    struct Builder {
        let document: DotEnv.Document
        let file: String
        let projectDirectory: String
        let environment: [String: String]
        var issues: [ConfigIssue] = []
        /// The `.env` prefixes of the extra services (`WORKER_`), longest first, once `SAGEDEV_SERVICES` is read.
        var extraPrefixes: [String] = []

        init(document: DotEnv.Document, file: String, projectDirectory: String, environment: [String: String]) {
            self.document = document; self.file = file; self.projectDirectory = projectDirectory
            self.environment = environment
        }

        // MARK: where a value came from

        /// The raw value of a known key: the process environment's, else the file's.
        func raw(_ key: String) -> String? { environment[key] ?? document.values[key] }

        func fromEnvironment(_ key: String) -> Bool { environment[key] != nil }

        mutating func issue(_ key: String, _ message: String, severity: ConfigIssue.Severity = .error, atKey: Bool = false) {
            if fromEnvironment(key) {
                issues.append(ConfigIssue(severity, key: key, "\(message) (the value comes from the process environment)"))
            } else if let e = document.entry(for: key) {
                issues.append(ConfigIssue(severity, key: key, file: file, line: atKey ? e.line : e.valueLine,
                                          column: atKey ? e.column : e.valueColumn, message))
            } else {
                issues.append(ConfigIssue(severity, key: key, file: file, message))
            }
        }

        /// The value of a known key with its default applied (missing or empty → default).
        func value(_ key: String) -> String {
            let v = raw(key) ?? ""
            if v.isEmpty { return keySpec(key)?.defaultValue ?? "" }
            return v
        }

        /// The table's entry for a key: its own, or the `<NAME>_*` pattern for a key of a declared extra service.
        func keySpec(_ key: String) -> ConfigKey? {
            if let k = ConfigKey.named(key) { return k }
            guard let (_, suffix) = extraServiceKey(key) else { return nil }
            return ConfigKey.pattern(suffix)
        }

        /// (prefix, suffix) when `key` is one of the keys a declared extra service takes (`WORKER_` + `PORT`).
        func extraServiceKey(_ key: String) -> (String, String)? {
            for prefix in extraPrefixes where key.hasPrefix(prefix) {
                let suffix = String(key.dropFirst(prefix.count))
                if ConfigKey.pattern(suffix) != nil { return (prefix, suffix) }
            }
            return nil
        }

        // MARK: the pipeline

        mutating func build() -> ConfigReport {
            for p in document.errors {
                issues.append(ConfigIssue(.error, key: p.key, file: file, line: p.line, column: p.column, p.message))
            }
            for p in document.warnings {
                issues.append(ConfigIssue(.warning, key: p.key, file: file, line: p.line, column: p.column, p.message))
            }
            let declared = declaredServices()
            extraPrefixes = declared.map(\.envPrefix).sorted { $0.count > $1.count }
            checkKeys()

            let chosenRuntime = choice("SAGEDEV_RUNTIME", Config.Runtime.self)
            let runtime = chosenRuntime ?? .auto
            let bind = bindAddress()
            let projectName = projectNameValue()
            let postgres = Config.Postgres(
                image: image("POSTGRES_IMAGE"), user: identifier("POSTGRES_USER"),
                password: password("POSTGRES_PASSWORD"), database: identifier("POSTGRES_DB"),
                port: port("POSTGRES_PORT"), binDirectory: optionalPath("SAGEDEV_POSTGRES_BIN_DIR"),
                osUser: optional("SAGEDEV_POSTGRES_OS_USER"))
            let valkey = Config.Valkey(image: image("VALKEY_IMAGE"), password: password("VALKEY_PASSWORD"),
                                       port: port("VALKEY_PORT"), binDirectory: optionalPath("SAGEDEV_VALKEY_BIN_DIR"))
            let backend = app("BACKEND")
            let frontend = app("FRONTEND")
            let extras = extraServices(declared, runtime: chosenRuntime)
            checkGraph(Config.standardServices(postgres: postgres, valkey: valkey, backend: backend, frontend: frontend) + extras)
            checkPortsDistinct(extras)
            checkPasswordsForCompose(chosenRuntime)
            let debounce = integer("SAGEDEV_WATCH_DEBOUNCE_MS")
            let spares = integer("SAGEDEV_RESET_SPARES")
            let ignore = value("SAGEDEV_WATCH_IGNORE").split(separator: ",")
                .map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }

            var values = document.effectiveValues(environment: environment)
            // Known keys set only in the process environment count too (Compose interpolates them).
            for k in ConfigKey.consumed where document.values[k.name] == nil {
                if let v = environment[k.name] { values[k.name] = v }
            }
            let passthrough = passthroughValues(values)

            let config = Config(
                projectName: projectName, projectDirectory: projectDirectory, runtime: runtime, bindAddress: bind,
                postgres: postgres, valkey: valkey, backend: backend, frontend: frontend,
                migrationsDirectory: path("SAGEDEV_MIGRATIONS_DIR"), seedsDirectory: path("SAGEDEV_SEEDS_DIR"),
                migrateCommand: value("SAGEDEV_MIGRATE_COMMAND"), seedCommand: value("SAGEDEV_SEED_COMMAND"),
                watchIgnore: ignore, watchDebounceMilliseconds: debounce,
                passthrough: passthrough, values: values, extraServices: extras)
            var result = config
            result.portsMode = choice("SAGEDEV_PORTS", PortsMode.self) ?? .shift
            result.portStride = integer("SAGEDEV_PORT_STRIDE")
            result.resetSpares = spares
            // File order: positioned issues by line and column, then the ones without a line.
            let ordered = issues.enumerated().sorted { a, b in
                let la = a.element.line ?? Int.max, lb = b.element.line ?? Int.max
                if la != lb { return la < lb }
                let ca = a.element.column ?? 0, cb = b.element.column ?? 0
                return ca != cb ? ca < cb : a.offset < b.offset
            }.map(\.element)
            let redacted = ordered.map { i -> ConfigIssue in var i = i; i.message = result.redacting(i.message); return i }
            return ConfigReport(config: redacted.contains(where: \.isError) ? nil : result, issues: redacted)
        }

        /// Unknown SAGEDEV_* keys, near-misses of known keys, and keys the apps cannot receive.
        mutating func checkKeys() {
            var known = ConfigKey.all.filter { !$0.isPattern }.map(\.name)
            for prefix in extraPrefixes { known += ConfigKey.serviceSuffixes.map { prefix + $0 } }
            var seen = Set<String>()
            for e in document.entries where seen.insert(e.key).inserted {
                if keySpec(e.key) != nil { continue }
                if e.key.hasSuffix("_KIND"), e.key.count > 5, ["app", "container"].contains(e.value) {
                    let name = String(e.key.dropLast(5)).lowercased().replacingAll("_", "-")
                    issues.append(ConfigIssue(.warning, key: e.key, file: file, line: e.line, column: e.column,
                                              "\(e.key) looks like the kind of an extra service, but \(name) is not in SAGEDEV_SERVICES; add it there (it is passed to the apps as it is meanwhile)"))
                    continue
                }
                let hint = Suggestion.closest(to: e.key, among: known).map { "; did you mean \($0)?" } ?? ""
                if e.key.hasPrefix("SAGEDEV_") {
                    issues.append(ConfigIssue(.error, key: e.key, file: file, line: e.line, column: e.column,
                                              "unknown key \(e.key)\(hint) (env.example lists every key)"))
                } else if !hint.isEmpty {
                    issues.append(ConfigIssue(.warning, key: e.key, file: file, line: e.line, column: e.column,
                                              "\(e.key) is not a sagedev key and is passed to the apps as it is\(hint)"))
                }
                if !e.key.hasPrefix("SAGEDEV_"), !ConfigLoader.isToolKey(e.key), !ConfigLoader.isPortableName(e.key) {
                    issues.append(ConfigIssue(.warning, key: e.key, file: file, line: e.line, column: e.column,
                                              "\(e.key) is not passed to the apps: environment names there use only letters, digits and '_'"))
                }
            }
        }

        func passthroughValues(_ values: [String: String]) -> [String: String] {
            var out: [String: String] = [:]
            for (k, v) in values where document.values[k] != nil {
                if let key = keySpec(k), !key.isPassthroughExample { continue }
                if k.hasPrefix("SAGEDEV_") || ConfigLoader.isToolKey(k) || !ConfigLoader.isPortableName(k) { continue }
                out[k] = v
            }
            return out
        }

        // MARK: typed values

        mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) -> T? where T.RawValue == String {
            let v = value(key)
            if let t = T(rawValue: v) { return t }
            let options = T.allCases.map(\.rawValue)
            let hint = Suggestion.closest(to: v, among: options).map { "; did you mean \($0)?" } ?? ""
            issue(key, "\(key) must be \(Suggestion.list(options)), not \"\(v)\"\(hint)")
            return nil
        }

        mutating func port(_ key: String) -> Int {
            let v = value(key)
            if let n = Int(v), n >= 1, n <= 65_535, v.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) { return n }
            issue(key, "\(key) must be a port number from 1 to 65535, not \"\(v)\"")
            return Int(ConfigKey.named(key)?.defaultValue ?? "") ?? 0
        }

        mutating func integer(_ key: String) -> Int {
            let v = value(key)
            guard case .integer(let range)? = ConfigKey.named(key)?.kind else { return Int(v) ?? 0 }
            if let n = Int(v), range.contains(n) { return n }
            issue(key, "\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(v)\"")
            return Int(ConfigKey.named(key)?.defaultValue ?? "") ?? range.lowerBound
        }

        mutating func image(_ key: String) -> String {
            let v = value(key)
            if v.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0 == "$" }) {
                issue(key, "\(key) must be an image reference such as \(ConfigKey.named(key)?.defaultValue ?? "name:tag"), without spaces or '$'")
            }
            return v
        }

        mutating func identifier(_ key: String) -> String {
            let v = value(key)
            let ok = v.utf8.count <= 63 && (v.unicodeScalars.first.map { $0 == "_" || $0.isASCIILetter } ?? false)
                && v.unicodeScalars.allSatisfy { $0 == "_" || $0 == "-" || $0.isASCIILetter || ("0"..."9").contains($0) }
            if !ok {
                issue(key, "\(key) must start with a letter or '_' and hold at most 63 letters, digits, '_' or '-', not \"\(v)\"")
            }
            return v
        }

        mutating func password(_ key: String) -> String {
            let spec = ConfigKey.named(key)!
            let v = raw(key) ?? ""
            if raw(key) == nil, spec.requirement != .optional {
                issue(key, "\(key) is required; set it in .env (env.example shows a placeholder)")
                return v
            }
            if v.isEmpty {
                if spec.requirement == .required {
                    issue(key, "\(key) is empty; set a password in .env")
                } else if key == "VALKEY_PASSWORD" {
                    issue(key, "VALKEY_PASSWORD is empty, so Valkey runs without a password", severity: .warning)
                }
                return v
            }
            return v
        }

        /// The compose file puts the passwords into DATABASE_URL and VALKEY_URL through Compose
        /// interpolation, which cannot percent-encode; the native runtime encodes them itself.
        mutating func checkPasswordsForCompose(_ runtime: Config.Runtime?) {
            guard runtime != .native else { return }
            for key in ["POSTGRES_PASSWORD", "VALKEY_PASSWORD"] {
                let v = raw(key) ?? ""
                guard !v.isEmpty, !ComposeFile.isSafeInURL(v) else { continue }
                if runtime == .compose {
                    issue(key, "\(key) may only hold \(ComposeFile.urlSafeCharacters) with the compose runtime, which places it in a connection URL unescaped; choose another password or use SAGEDEV_RUNTIME=native")
                } else {
                    issue(key, "\(key) holds characters the compose runtime cannot place in a connection URL (\(ComposeFile.urlSafeCharacters) can); the native runtime handles it", severity: .warning)
                }
            }
        }

        mutating func path(_ key: String) -> String {
            let v = value(key)
            if v.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) {
                issue(key, "\(key) must be a path on one line")
            }
            return v
        }

        mutating func optionalPath(_ key: String) -> String? {
            let v = path(key)
            return v.isEmpty ? nil : v
        }

        func optional(_ key: String) -> String? {
            let v = value(key)
            return v.isEmpty ? nil : v
        }

        mutating func healthPath(_ key: String) -> String {
            let v = value(key)
            if !v.hasPrefix("/") || v.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 }) {
                issue(key, "\(key) must be a URL path starting with '/' and without spaces, not \"\(v)\"")
            }
            return v
        }

        mutating func app(_ prefix: String) -> Config.App {
            let dir = path("\(prefix)_DIR")
            if dir.isEmpty { issue("\(prefix)_DIR", "\(prefix)_DIR must name the source directory") }
            return Config.App(directory: dir, devCommand: value("\(prefix)_DEV_COMMAND"),
                              installCommand: value("\(prefix)_INSTALL_COMMAND"), port: port("\(prefix)_PORT"),
                              healthPath: healthPath("\(prefix)_HEALTH_PATH"),
                              reloadMode: choice("\(prefix)_RELOAD", Config.ReloadMode.self) ?? .self,
                              image: image("\(prefix)_IMAGE"),
                              framework: choice("\(prefix)_FRAMEWORK", DevServerFramework.self) ?? .auto)
        }

        mutating func checkPortsDistinct(_ extras: [ServiceSpec]) {
            var owner: [Int: String] = [:]
            for key in ["POSTGRES_PORT", "VALKEY_PORT", "BACKEND_PORT", "FRONTEND_PORT"] + extras.compactMap(\.portKey) {
                guard let n = Int(value(key)), (1...65_535).contains(n) else { continue }
                if let first = owner[n] {
                    issue(key, "\(key) \(n) is already \(first); every service needs its own host port")
                } else {
                    owner[n] = key
                }
            }
        }

        mutating func bindAddress() -> String {
            let v = value("SAGEDEV_BIND_ADDRESS")
            if v == "localhost" {
                issue("SAGEDEV_BIND_ADDRESS", "SAGEDEV_BIND_ADDRESS must be an IP address; use 127.0.0.1 for localhost")
            } else if !IPAddress.isIPv4(v) && !IPAddress.isIPv6(v) {
                issue("SAGEDEV_BIND_ADDRESS", "SAGEDEV_BIND_ADDRESS must be an IPv4 or IPv6 address such as 127.0.0.1, not \"\(v)\"")
            } else if v == "0.0.0.0" || IPAddress.isUnspecifiedIPv6(v) {
                issue("SAGEDEV_BIND_ADDRESS", "SAGEDEV_BIND_ADDRESS \(v) publishes every port to the network, not just this machine",
                      severity: .warning)
            }
            return v
        }

        mutating func projectNameValue() -> String {
            let v = raw("SAGEDEV_PROJECT") ?? ""
            if v.isEmpty { return ConfigLoader.projectName(fromDirectory: projectDirectory) }
            let ok = (v.unicodeScalars.first.map { ("a"..."z").contains($0) || ("0"..."9").contains($0) } ?? false)
                && v.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
            if !ok {
                let hint = ConfigLoader.projectName(fromDirectory: v)
                issue("SAGEDEV_PROJECT", "SAGEDEV_PROJECT must hold lowercase letters, digits, '-' and '_' and start with a letter or digit, not \"\(v)\"; for example \(hint)")
            }
            return v
        }
    }
}

/// Textual IP address checks (no resolver, no I/O).
enum IPAddress {
    static func isIPv4(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }),
                  let n = Int(p), n <= 255, !(p.count > 1 && p.hasPrefix("0")) else { return false }
        }
        return true
    }

    static func isIPv6(_ s: String) -> Bool {
        guard s.contains(":") else { return false }
        var text = s
        var groups = s.components(separatedByString: ":")
        if let last = groups.last, last.contains(".") {
            // An embedded IPv4 address stands for the last two groups.
            guard isIPv4(last) else { return false }
            groups.removeLast()
            text = groups.joined(separator: ":") + ":0:0"
        }
        let halves = text.components(separatedByString: "::")
        guard halves.count <= 2 else { return false }
        func hexGroups(_ t: String) -> [String]? {
            if t.isEmpty { return [] }
            let g = t.components(separatedByString: ":")
            for x in g {
                guard !x.isEmpty, x.count <= 4, x.unicodeScalars.allSatisfy({ $0.isHexDigit }) else { return nil }
            }
            return g
        }
        if halves.count == 2 {
            guard let a = hexGroups(halves[0]), let b = hexGroups(halves[1]) else { return false }
            return a.count + b.count < 8
        }
        guard let g = hexGroups(text) else { return false }
        return g.count == 8
    }

    static func isUnspecifiedIPv6(_ s: String) -> Bool {
        isIPv6(s) && s.unicodeScalars.allSatisfy { $0 == "0" || $0 == ":" }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isHexDigit: Bool { ("0"..."9").contains(self) || ("a"..."f").contains(self) || ("A"..."F").contains(self) }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }

    /// Splits on a separator string without Foundation.
    fileprivate func components(separatedByString sep: String) -> [String] {
        var out: [String] = []
        var current = ""
        var rest = Substring(self)
        while !rest.isEmpty {
            if rest.hasPrefix(sep) {
                out.append(current); current = ""
                rest = rest.dropFirst(sep.count)
            } else {
                current.append(rest.removeFirst())
            }
        }
        out.append(current)
        return out
    }
}
