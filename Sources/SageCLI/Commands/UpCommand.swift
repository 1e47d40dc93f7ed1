import SageCore
import SageSystem

struct UpCommand: Command {
    static let name = "up"
    static let summary = "Start the stack (daemon, PostgreSQL, Valkey, migrations and seeds, backend, frontend) and wait until healthy."
    static let arguments = "[SERVICE...]"
    static let options = [
        OptionSpec("--no-watch", help: "Do not watch the sources for hot reload."),
        OptionSpec.timeout(default: 300),
    ]
    static let discussion = "Exit 0 when every service is healthy; 1 when one fails (its reason and last 20 log lines are shown; healthy services stay up); 78 for an invalid .env."
    let names: [String]
    let watch: Bool
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        names = p.positionals
        watch = !p.has("--no-watch")
        timeout = try p.timeout(default: 300)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        let config = try loadConfig(context, projectDirectory: paths.root)  // a bad .env exits 78 before anything starts
        let out = context.output
        let services = try Project.services(names, known: config.services.serviceIDs)
        // A container service needs the compose runtime: with auto, say so before a daemon picks native.
        if let ct = config.extraServices.first(where: { $0.container != nil }), config.runtime == .auto,
           DaemonLauncher.isRunning(paths) == nil, Stack.chooseRuntime(config, environment: context.environment).runtime == .native {
            out.error("\(ct.id) is a container service (\(ct.id.envPrefix)KIND=container), which only the compose runtime runs, and no Docker engine answers (SAGEDEV_RUNTIME=auto); start one, or make \(ct.id) an app with \(ct.id.envPrefix)KIND=app")
            return ExitCode.config
        }
        // With no daemon, claim this checkout's port slot before starting anything (even initdb): the claim checks
        // every port, shifts past other sagedev instances and refuses a port held by anything else. The daemon
        // claims again once it runs and gets the same slot, which this claim holds for it meanwhile.
        if DaemonLauncher.isRunning(paths) == nil {
            do {
                let claim = try InstanceClaims.claim(for: config, paths: paths, environment: context.environment, role: .starting(.current()))
                if claim.placement.slot != 0 {
                    out.error("sagedev: this checkout runs in port slot \(claim.placement.slot) (every port +\(claim.placement.offset)):")
                    for n in claim.notes { out.error("  " + n) }
                }
            } catch let e as InstanceError where e.code == .portTaken {
                out.error(out.paint("sagedev up failed", .red) + ": a port is taken; nothing was started.")
                for line in e.message.split(separator: "\n") { out.error("  " + line) }
                return ExitCode.failure
            }
        }
        let (client, started) = try DaemonLauncher.connectOrStart(paths, executable: context.executablePath,
                                                                  environment: context.environment,
                                                                  extraArguments: watch ? [] : ["--no-watch"])
        if started { out.error("sagedev: started the daemon for \(paths.root)") }
        let view = ProgressView(output: out, services: services)
        do {
            let result = try client.send(UpRequest(services: names.isEmpty ? [] : services, watch: watch),
                                         deadline: .after(seconds: timeout), onEvent: view.handle)
            let slot = result.slot.flatMap { $0 == 0 ? nil : ", port slot \($0)" } ?? ""
            out.line(out.paint("The Sage stack is up", .green) + " (runtime \(result.runtime)\(slot)):")
            printURLs(out, result)
            return ExitCode.success
        } catch let f as DaemonClient.Failure {
            out.error(out.paint("sagedev up failed", .red) + ": " + f.error.service.map { "\($0): " }.orEmpty + f.message)
            if let failed = f.error.service { explainUnhealthy(paths, out, only: failed, besides: f.message) }
            if let tail = f.error.logTail, !tail.isEmpty {
                out.error("last \(tail.count) log lines of \(f.error.service?.rawValue ?? "the service"):")
                for l in tail { out.error("  " + l) }
            }
            if f.code == "port-conflict" { out.error("nothing was started.") }
            return ExitCode.failure
        } catch let e as SystemError where e.code == .timedOut {
            out.error("sagedev up: not healthy after \(Int(timeout)) s; see 'sagedev status' and 'sagedev logs'")
            explainUnhealthy(paths, out, only: nil, besides: "")
            return ExitCode.failure
        }
    }
}

/// Says why each wanted service that is not healthy is not: the probe's own words (for a refused app, what it
/// listens on instead).
func explainUnhealthy(_ paths: ProjectPaths, _ out: Output, only: ServiceID?, besides: String) {
    guard let client = try? DaemonClient.connect(paths, deadline: .after(seconds: 2)),
          let status = try? client.send(StatusRequest(), deadline: .after(seconds: 5)) else { return }
    for s in status.services where s.wanted && s.state != .healthy && (only == nil || s.name == only) {
        let why = s.health.flatMap { $0.outcome == .ready ? nil : $0.reason } ?? s.reason
        if why == besides { continue }
        out.error("  \(s.name.rawValue): \(s.state.rawValue): \(why)")
    }
}

extension Optional where Wrapped == String {
    var orEmpty: String { self ?? "" }
}
