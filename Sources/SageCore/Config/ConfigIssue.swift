/// One problem with the configuration, with where it was found. Messages never contain a secret value.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable, Equatable { case error, warning }

    public var severity: Severity
    /// The key concerned, when there is one.
    public var key: String?
    /// The file the issue is in (the `.env` path); nil when the value came from the process environment.
    public var file: String?
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(_ severity: Severity = .error, key: String? = nil, file: String? = nil, line: Int? = nil,
                column: Int? = nil, _ message: String) {
        self.severity = severity; self.key = key; self.file = file; self.line = line; self.column = column
        self.message = message
    }

    public var isError: Bool { severity == .error }

    /// `file:line:column: message`, as compilers print it (callers add "warning:" where they want it).
    public var description: String { formatted(file: file) }

    /// The same with the file path replaced (for example by a path relative to the working directory),
    /// optionally with "warning: " after the location of a warning.
    public func formatted(file shownFile: String?, showingSeverity: Bool = false) -> String {
        var location = ""
        if let f = shownFile {
            location = f
            if let l = line { location += ":\(l)"; if let c = column { location += ":\(c)" } }
            location += ": "
        }
        return location + (showingSeverity && severity == .warning ? "warning: " : "") + message
    }
}

/// The one error type of configuration loading: what failed and every issue found, so that a single run
/// reports all of them. The CLI maps it to exit code 78 (EX_CONFIG).
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// There is no `.env` in the project directory.
        case missingEnvFile
        /// `.env` exists but cannot be read.
        case unreadableEnvFile
        /// The file parsed, or failed to, with errors listed in `issues`.
        case invalid
    }

    public var code: Code
    /// Every issue, errors and warnings, in file order.
    public var issues: [ConfigIssue]

    public init(_ code: Code, issues: [ConfigIssue]) { self.code = code; self.issues = issues }

    public var errors: [ConfigIssue] { issues.filter(\.isError) }

    public var message: String {
        switch code {
        case .missingEnvFile, .unreadableEnvFile: return errors.first?.message ?? code.rawValue
        case .invalid:
            let n = errors.count
            return "the configuration has \(n) problem\(n == 1 ? "" : "s"); fix \(n == 1 ? "it" : "them") in .env and run the command again"
        }
    }

    public var description: String { ([message] + issues.map(\.description)).joined(separator: "\n") }
}
