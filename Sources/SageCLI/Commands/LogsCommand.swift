import SageCore
import SageSystem

struct LogsCommand: Command {
    static let name = "logs"
    static let summary = "Show service logs, prefixed by service; -f follows them."
    static let arguments = "[SERVICE...]"
    static let options = [
        OptionSpec("--follow", short: "f", help: "Keep printing new lines until interrupted."),
        OptionSpec("--tail", value: "N", help: "How many lines per service to show first (default 100)."),
    ]
    let names: [String]
    let follow: Bool
    let tail: Int

    init(parsing p: ParsedArguments) throws {
        names = p.positionals
        follow = p.has("--follow")
        tail = try p.int("--tail", range: 0...1_000_000) ?? 100
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        let chosen = try Project.services(names, known: Project.serviceIDs(context, paths))
        let out = context.output
        let width = chosen.map { $0.rawValue.count }.max() ?? 8
        let colours: [ServiceID: Output.Colour] = [.postgres: .blue, .valkey: .red, .backend: .green, .frontend: .magenta]
        func emit(_ service: String, _ line: String) {
            let prefix = out.paint(service.padding(width) + "|", colours[ServiceID(service)] ?? .cyan)
            out.line(prefix + " " + line)
        }
        // With a daemon: its ring buffers, and a live stream for -f.
        if let client = try? DaemonClient.connect(paths) {
            do {
                try client.send(LogsRequest(services: chosen.map { ServiceID($0.rawValue) }, tail: tail, follow: follow),
                                deadline: follow ? .distantFuture : .after(seconds: 30)) { e in
                    if case .log(let l) = e { emit(l.service, l.line) }
                }
            } catch let f as DaemonClient.Failure where f.code == "closed" && follow {
                return ExitCode.success  // the daemon went away (down): nothing more will come
            }
            return ExitCode.success
        }
        // Without one: the log files, which outlive the daemon.
        guard !follow else { throw Project.noDaemon(paths) }
        var any = false
        for s in chosen {
            guard let text = FileDescriptor.readText(paths.log(s.rawValue)) else { continue }
            any = true
            for l in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().suffix(tail) { emit(s.rawValue, String(l)) }
        }
        if !any { out.error("sagedev logs: no logs yet in \(paths.logs); start the stack with 'sagedev up'") }
        return ExitCode.success
    }
}
