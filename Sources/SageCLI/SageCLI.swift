import SageCore
import SageSystem

/// The command table. A new command is one file and one line here.
public enum Commands {
    public static var all: [any Command.Type] { [
        UpCommand.self,
        StatusCommand.self,
        InstancesCommand.self,
        EnvCommand.self,
        LogsCommand.self,
        RestartCommand.self,
        DownCommand.self,
        ResetDBCommand.self,
        SeedCommand.self,
        MigrateCommand.self,
        DbCommand.self,
        WaitCommand.self,
        DoctorCommand.self,
        ToolchainCommand.self,
        InitCommand.self,
        ComposeCommand.self,
        DaemonCommand.self,
        MCPCommand.self,
        VersionCommand.self,
    ] }
    static func named(_ n: String) -> (any Command.Type)? { all.first { $0.name == n } }
}



public enum SageCLI {
    /// Runs sagedev with argv in the real process environment; returns the exit code.
    public static func main(arguments: [String]) -> Int32 {
        let env = ProcessEnvironment.current()
        let cwd = ProcessIdentity.workingDirectory() ?? "."
        let context = CommandContext(
            output: .standard(environment: env), environment: env, workingDirectory: cwd,
            stdinIsTTY: ProcessIdentity.isTerminal(0), readLine: { Swift.readLine() },
            executablePath: ProcessEnvironment.executablePath() ?? arguments.first ?? "sagedev",
            readInput: { StandardInput.read() })
        return run(Array(arguments.dropFirst()), context: context)
    }

    /// Dispatches argv (without the program name) to a command.
    public static func run(_ args: [String], context: CommandContext) -> Int32 {
        let out = context.output
        guard let first = args.first else { out.line(help()); return ExitCode.success }
        switch first {
        case "--help", "-h", "help":
            if args.count > 1, let c = Commands.named(args[1]) { out.line(help(for: c)); return ExitCode.success }
            out.line(help()); return ExitCode.success
        case "--version", "-V":
            out.line("sagedev \(sagedevVersion)"); return ExitCode.success
        default: break
        }
        guard let type = Commands.named(first) else {
            let hint = Suggestion.closest(to: first, among: Commands.all.map { $0.name })
                .map { " Did you mean '\($0)'?" } ?? ""
            out.error("sagedev: unknown command '\(first)'.\(hint) Run 'sagedev --help' for the list.")
            return ExitCode.usage
        }
        let rest = Array(args.dropFirst())
        if rest.contains("--help") || rest.contains("-h") { out.line(help(for: type)); return ExitCode.success }
        do {
            let parsed = try ArgumentParser.parse(rest, options: type.options, command: type.name)
            let command = try type.init(parsing: parsed)
            return try command.run(context)
        } catch let e as CLIError {
            out.error("sagedev \(type.name): \(e.message)")
            return e.exitCode
        } catch {
            out.error("sagedev \(type.name): \(error)")
            return ExitCode.failure
        }
    }

    public static func help() -> String {
        var s = """
        sagedev \(sagedevVersion): the Sage stack (PostgreSQL 18, Valkey 8, backend, frontend) on one command.

        USAGE: sagedev <command> [options]

        COMMANDS:

        """
        let width = (Commands.all.map { $0.name.count }.max() ?? 0) + 2
        for c in Commands.all { s += "  " + c.name.padding(width) + c.summary + "\n" }
        s += "\nRun 'sagedev <command> --help' for a command's options. Exit codes: 0 ok, 1 failure, 3 no daemon, 64 usage, 78 configuration."
        return s
    }

    public static func help(for c: any Command.Type) -> String {
        var s = "\(c.summary)\n\nUSAGE: sagedev \(c.name)"
        if !c.options.isEmpty { s += " [options]" }
        if !c.arguments.isEmpty { s += " \(c.arguments)" }
        s += "\n"
        if !c.options.isEmpty {
            s += "\nOPTIONS:\n"
            let labels = c.options.map { o -> String in
                (o.short.map { "-\($0), " } ?? "    ") + o.long + (o.valueName.map { " \($0)" } ?? "")
            }
            let width = (labels.map(\.count).max() ?? 0) + 2
            for (o, l) in zip(c.options, labels) { s += "  " + l.padding(width) + o.help + "\n" }
            s += "  " + "    --help".padding(width) + "Show this help.\n"
        }
        if !c.discussion.isEmpty { s += "\n" + c.discussion + "\n" }
        return s
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}

struct VersionCommand: Command {
    static let name = "version"
    static let summary = "Print sagedev's version."
    static let options: [OptionSpec] = []
    init(parsing: ParsedArguments) throws {
        try parsing.rejectArguments()
    }
    func run(_ context: CommandContext) throws -> Int32 {
        context.output.line("sagedev \(sagedevVersion)")
        return ExitCode.success
    }
}
