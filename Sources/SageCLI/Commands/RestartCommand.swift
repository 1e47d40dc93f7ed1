import SageCore
import SageSystem

struct RestartCommand: Command {
    static let name = "restart"
    static let summary = "Restart services (all by default) and wait until they are healthy again."
    static let arguments = "[SERVICE...]"
    static let options = [OptionSpec.timeout(default: 300)]
    let names: [String]
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        names = p.positionals
        timeout = try p.timeout(default: 300)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        let chosen = try Project.services(names, known: Project.serviceIDs(context, paths))
        guard let client = try Project.connectOrAdopt(context, paths) else { throw Project.noDaemon(paths) }
        let view = ProgressView(output: context.output, services: chosen)
        do {
            try client.send(RestartRequest(services: chosen.map { ServiceID($0.rawValue) }), deadline: .after(seconds: timeout), onEvent: view.handle)
            context.output.line("Restarted \(chosen.map(\.rawValue).joined(separator: ", ")).")
            return ExitCode.success
        } catch let f as DaemonClient.Failure {
            context.output.error("sagedev restart failed: \(f.message)")
            for l in f.error.logTail ?? [] { context.output.error("  " + l) }
            return ExitCode.failure
        }
    }
}
