import SageCore
import SageSystem

struct ResetDBCommand: Command {
    static let name = "reset-db"
    static let summary = "Recreate the database from the migrated and seeded template (milliseconds), flush Valkey, restart the backend."
    static let options = [
        OptionSpec("--yes", short: "y", help: "Do not ask for confirmation (required when stdin is not a terminal)."),
        OptionSpec("--keep-cache", help: "Do not flush Valkey."),
        OptionSpec("--no-seed", help: "Leave the new database migrated but not seeded."),
        OptionSpec("--replay", help: "Replay migrations and seeds even when the template is current, and rebuild the template."),
        OptionSpec("--json", help: "Print the report as one JSON object."),
        OptionSpec.timeout(default: 1800),
    ]
    static let discussion = """
        Steps: stop the backend; DROP DATABASE … WITH (FORCE); recreate it from <db>__sagedev_template: rename into \
        place the copy the daemon made of it ahead of time (in the background after the previous reset), else \
        CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY with file_copy_method = clone; when the template is stale, \
        replay migrations and seeds and refresh the template; FLUSHALL on Valkey; start the backend and wait until \
        it is healthy. Concurrent resets run one after the other. SAGEDEV_RESET_SPARE=off in the daemon's \
        environment turns the ahead-of-time copy off (it costs one more copy of the database on disk).
        Exit 0 on success, 1 on failure, 3 when no daemon runs, 64 without --yes and no terminal.
        """
    let yes: Bool, keepCache: Bool, seed: Bool, replay: Bool, json: Bool
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        yes = p.has("--yes"); keepCache = p.has("--keep-cache"); seed = !p.has("--no-seed"); replay = p.has("--replay")
        json = p.has("--json")
        timeout = try p.timeout(default: 1800)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        guard try DatabaseCLI.confirm(context, yes: yes, question: "Drop and recreate the database of \(paths.root)? Its data will be lost.",
                                      flagHint: "reset-db deletes the database's data") else { return ExitCode.failure }
        let request = ResetDatabaseRequest(keepCache: keepCache, seed: seed, replay: replay)
        guard let result = try DatabaseCLI.request(context, request, timeout: timeout, quiet: json) else { return ExitCode.failure }
        if json { try DatabaseCLI.printJSON(context.output, result); return ExitCode.success }
        let total = result.totalMs
        let backend = result.backendStartMs ?? 0
        let source = result.source == "template" ? "from template \(result.template ?? "")"
            : "by replaying migrations and seeds"
        var line = "Reset database \(result.database ?? "") \(source) in \(DatabaseStep.format(total))"
        if backend > 0 { line += " (\(DatabaseStep.format(total - backend)) without the backend's own start of \(DatabaseStep.format(backend)))" }
        context.output.line(context.output.paint(line + ".", .green))
        return ExitCode.success
    }
}
