import SageCore
import SageSystem

struct ResetDBCommand: Command {
    static let name = "reset-db"
    static let summary = "Swap in a fresh copy of the migrated and seeded template (milliseconds) while the apps keep running, flush Valkey."
    static let options = [
        OptionSpec("--yes", short: "y", help: "Do not ask for confirmation (required when stdin is not a terminal)."),
        OptionSpec("--keep-cache", help: "Do not flush Valkey."),
        OptionSpec("--restart-apps", help: "Stop the services that use the database before the swap and start them again after it."),
        OptionSpec("--no-seed", help: "Leave the new database migrated but not seeded."),
        OptionSpec("--replay", help: "Replay migrations and seeds even when the template is current, and rebuild the template."),
        OptionSpec("--json", help: "Print the report as one JSON object."),
        OptionSpec.timeout(default: 1800),
    ]
    static let discussion = """
        Steps: take a ready copy of <db>__sagedev_template (SAGEDEV_RESET_SPARES of them are kept, refilled in the \
        background), or copy it now (CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY, file_copy_method = clone); \
        when the template is stale, replay migrations and seeds into the new database and refresh the template from \
        it; then close the database to connections (ALLOW_CONNECTIONS false) and end its sessions, rename it aside \
        and the new one into place in one transaction, FLUSHALL on Valkey, and drop the old database in the \
        background. The apps keep running: their connection pools reconnect on the next query; an app that exits \
        instead is restarted by the supervisor, and the output names it. --restart-apps stops every service that \
        uses the database before the swap and starts it again after. Concurrent resets run one after the other.
        Exit 0 on success, 1 on failure, 3 when no daemon runs, 64 without --yes and no terminal.
        """
    let yes: Bool, keepCache: Bool, seed: Bool, replay: Bool, restartApps: Bool, json: Bool
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        yes = p.has("--yes"); keepCache = p.has("--keep-cache"); seed = !p.has("--no-seed"); replay = p.has("--replay")
        restartApps = p.has("--restart-apps")
        json = p.has("--json")
        timeout = try p.timeout(default: 1800)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        guard try DatabaseCLI.confirm(context, yes: yes, question: "Drop and recreate the database of \(paths.root)? Its data will be lost.",
                                      flagHint: "reset-db deletes the database's data") else { return ExitCode.failure }
        let request = ResetDatabaseRequest(keepCache: keepCache, seed: seed, replay: replay, restartApps: restartApps)
        guard let result = try DatabaseCLI.request(context, request, timeout: timeout, quiet: json) else { return ExitCode.failure }
        if json { try DatabaseCLI.printJSON(context.output, result); return ExitCode.success }
        let total = result.totalMs
        let apps = result.appsStartMs ?? 0
        let source = result.source == "template" ? "from template \(result.template ?? "")"
            : "by replaying migrations and seeds"
        var line = "Reset database \(result.database ?? "") \(source) in \(DatabaseStep.format(total))"
        let kept = result.appsKept ?? [], restarted = result.appsRestarted ?? []
        if apps > 0 { line += " (\(DatabaseStep.format(total - apps)) without the apps' own start of \(DatabaseStep.format(apps)))" }
        else if !kept.isEmpty { line += "; \(kept.joined(separator: ", ")) kept running" }
        if !restarted.isEmpty && !restartApps { line += "; \(restarted.joined(separator: ", ")) exited and is restarted by the supervisor" }
        context.output.line(context.output.paint(line + ".", .green))
        return ExitCode.success
    }
}
