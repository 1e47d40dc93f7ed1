import Foundation
import SageCore
import SageWire
import SageSystem

struct EnvCommand: Command {
    static let name = "env"
    static let summary = "Print this checkout's resolved connection values: URLs, ports and the compose project name."
    static let options = [
        OptionSpec("--format", value: "FORMAT", help: "dotenv (default), json or shell (export lines)."),
        OptionSpec("--show-secrets", help: "Print passwords instead of ****."),
        OptionSpec("--service", value: "NAME", help: "Print the whole environment this service is started with instead."),
    ]
    static let discussion = "The values are those of this checkout's port slot, as its services get them. For scripts and test runners: eval \"$(sagedev env --format shell --show-secrets)\"."
    enum Format: String, CaseIterable { case dotenv, json, shell }
    let format: Format
    let showSecrets: Bool
    let service: String?

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        let f = p.value("--format") ?? "dotenv"
        guard let format = Format(rawValue: f) else {
            throw CLIError.usage("--format must be \(Format.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(f)\"")
        }
        self.format = format
        showSecrets = p.has("--show-secrets")
        service = p.value("--service")
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        let config = try loadPlacedConfig(context, paths, quiet: true)
        var values: [String: String]
        if let service {
            let id = ServiceID(service)
            guard config.services.serviceIDs.contains(id) else {
                throw CLIError.usage("--service: unknown service \"\(service)\"; the services are \(config.services.serviceIDs.map(\.rawValue).joined(separator: ", "))")
            }
            values = showSecrets ? config.serviceEnvironment(id) : config.redactedServiceEnvironment(id)
        } else {
            values = config.connectionEnvironment()
            if !showSecrets { for (k, v) in values { values[k] = redactingURLPassword(v) } }
        }
        let keys = values.keys.sorted()
        let out = context.output
        switch format {
        case .json:
            let data = try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys, .withoutEscapingSlashes])
            out.line(String(decoding: data, as: UTF8.self))
        case .dotenv:
            for k in keys { out.line("\(k)=\(DotEnv.quote(values[k]!))") }
        case .shell:
            for k in keys { out.line("export \(k)=\(Self.shellQuoted(values[k]!))") }
        }
        return ExitCode.success
    }


    /// POSIX shell single quotes ('\'' for a quote).
    static func shellQuoted(_ v: String) -> String {
        "'" + v.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
