import SageCore

/// Documented exit codes (sysexits where one fits).
public enum ExitCode {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    public static let noDaemon: Int32 = 3
    public static let usage: Int32 = 64
    public static let config: Int32 = 78
}

/// A usage or run-time error carrying its exit code. Thrown by `validate`/`run`; printed by `main`.
public struct CLIError: Error, Sendable, CustomStringConvertible {
    public var exitCode: Int32
    public var message: String
    public init(_ exitCode: Int32, _ message: String) { self.exitCode = exitCode; self.message = message }
    public static func usage(_ m: String) -> CLIError { CLIError(ExitCode.usage, m) }
    public var description: String { message }
}

/// One option a command accepts.
public struct OptionSpec: Sendable {
    public var long: String          // "--json"
    public var short: Character?     // "f"
    public var valueName: String?    // nil for a flag; "N" for --tail N
    public var help: String
    public init(_ long: String, short: Character? = nil, value: String? = nil, help: String) {
        self.long = long; self.short = short; self.valueName = value; self.help = help
    }
}

extension OptionSpec {
    /// `--timeout SECONDS`: how long a command waits for the daemon. Read it with `ParsedArguments.timeout(default:)`.
    static func timeout(default seconds: Int) -> OptionSpec {
        OptionSpec("--timeout", value: "SECONDS", help: "Give up waiting after this long (default \(seconds)).")
    }
}

extension ParsedArguments {
    /// For a command that takes no positional arguments: a usage error naming the first one given.
    func rejectArguments() throws {
        if let extra = positionals.first { throw CLIError.usage("unexpected argument '\(extra)'") }
    }

    /// The `--timeout` seconds (1 s to a day), or `seconds` when it is not given.
    func timeout(default seconds: Int) throws -> Double { try double("--timeout", range: 1...86400) ?? Double(seconds) }
}

/// A sagedev command: a type in its own file. `init(parsing:)` validates; `run` acts through the context.
public protocol Command {
    static var name: String { get }
    static var summary: String { get }
    /// Positional arguments, for the usage line ("[SERVICE...]").
    static var arguments: String { get }
    static var options: [OptionSpec] { get }
    /// Extra help text shown under the options.
    static var discussion: String { get }
    init(parsing: ParsedArguments) throws
    func run(_ context: CommandContext) throws -> Int32
}

extension Command {
    public static var arguments: String { "" }
    public static var discussion: String { "" }
}
