import SageCore
import SageSystem

struct DaemonCommand: Command {
    static let name = "daemon"
    static let summary = "Run the project's daemon in the foreground (sagedev up starts it in the background)."
    static let options = [OptionSpec("--project", value: "DIR", help: "The project directory (default: found from the working directory)."),
                          OptionSpec("--no-watch", help: "Do not watch the sources for hot reload.")]
    let project: String?
    let watch: Bool

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        project = p.value("--project")
        watch = !p.has("--no-watch")
    }

    func run(_ context: CommandContext) throws -> Int32 {
        var environment = context.environment
        let readiness = ReadinessNotification.take(from: &environment)
        var ctx = context
        ctx.environment = environment
        if let project { ctx.environment["SAGEDEV_PROJECT_DIR"] = project }
        let paths = Project.paths(ctx)
        let configured = try loadConfig(ctx, projectDirectory: paths.root)
        // The slot `up` claimed for this checkout (or, started directly, the one this claim finds).
        let claim: Claim
        do {
            claim = try InstanceClaims.claim(for: configured, paths: paths, environment: environment, role: .starting(.current()))
        } catch let e as InstanceError {
            throw CLIError(ExitCode.failure, e.message)
        }
        let config = try loadConfig(ctx, projectDirectory: paths.root, quiet: true, placement: claim.placement)
        do {
            let daemon = try Stack.makeDaemon(config: config, paths: paths, environment: environment, watch: watch)
            daemon.readinessFD = readiness
            return try daemon.run()
        } catch let e as Daemon.AlreadyRunning {
            throw CLIError(ExitCode.failure, e.description)
        }
    }
}
