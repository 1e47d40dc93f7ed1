import SageCore
import SageSystem

struct MigrateCommand: Command {
    static let name = "migrate"
    static let summary = "Check connectivity, snapshot the database, apply pending migrations; restore the snapshot if one fails."
    static let options = [OptionSpec.timeout(default: 1800)]
    static let discussion = "The backend is stopped while migrating and started again after. The last 3 automatic snapshots are kept (see 'sagedev db snapshots')."
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        timeout = try p.timeout(default: 1800)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        guard let result = try DatabaseCLI.request(context, MigrateRequest(), timeout: timeout) else { return ExitCode.failure }
        let applied = result.applied ?? []
        let total = DatabaseStep.format(result.totalMs)
        context.output.line(applied.isEmpty ? "Nothing to migrate (\(total))."
                            : "Applied \(applied.joined(separator: ", ")) in \(total); snapshot \(result.snapshot ?? "") holds the database as it was before.")
        return ExitCode.success
    }
}
