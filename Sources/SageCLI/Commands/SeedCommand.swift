import SageCore
import SageSystem

struct SeedCommand: Command {
    static let name = "seed"
    static let summary = "Apply the seed files (each in its own transaction) and the seed command again."
    static let options = [OptionSpec.timeout(default: 1800)]
    static let discussion = "Seeds also run by themselves once, on a database that was never seeded, when 'sagedev up' starts the stack."
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        timeout = try p.timeout(default: 1800)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        guard let result = try DatabaseCLI.request(context, SeedRequest(), timeout: timeout) else { return ExitCode.failure }
        context.output.line("Seeded database \(result.database ?? "") in \(DatabaseStep.format(result.totalMs)).")
        return ExitCode.success
    }
}
