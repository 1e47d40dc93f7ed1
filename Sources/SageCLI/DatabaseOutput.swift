import Foundation
import SageCore
import SageSystem

/// What the database commands share: asking before destroying data, sending the daemon command, printing each
/// step with its milliseconds as it arrives.
enum DatabaseCLI {
    /// True to go ahead. With no terminal to ask on and no --yes, refuses with exit 64.
    static func confirm(_ context: CommandContext, yes: Bool, question: String, flagHint: String) throws -> Bool {
        if yes { return true }
        guard context.stdinIsTTY else {
            throw CLIError.usage("\(flagHint); with no terminal to ask on, add --yes to confirm")
        }
        context.output.write("\(question) [y/N] ")
        guard let answer = context.readLine(), ["y", "yes"].contains(answer.lowercased().trimmingCharacters(in: .whitespaces)) else {
            context.output.line("Nothing was changed.")
            return false
        }
        return true
    }

    /// Sends a database command to the daemon, printing its steps. Returns the result, or nil after printing the
    /// failure (the caller exits 1). No daemon is exit 3.
    static func request<R: ControlRequest>(_ context: CommandContext, _ request: R, timeout: Double,
                                           quiet: Bool = false) throws -> R.Response? {
        let paths = Project.paths(context)
        guard let client = try Project.connectOrAdopt(context, paths) else { throw Project.noDaemon(paths) }
        defer { client.close() }
        let out = context.output
        do {
            return try client.send(request, deadline: .after(seconds: timeout)) { event in
                guard !quiet, case .databaseStep(let step) = event else { return }
                printStep(out, step)
            }
        } catch let f as DaemonClient.Failure {
            // A request the daemon refused as malformed (an invalid clone name) is a usage error: exit 64.
            if f.error.sql?.kind == DatabaseError.Code.usage.rawValue { throw CLIError.usage(f.message) }
            out.error(out.paint("sagedev \(displayName(R.command)) failed", .red) + ": " + f.message)
            return nil
        } catch let e as SystemError where e.code == .timedOut {
            out.error("sagedev \(displayName(R.command)): no answer from the daemon after \(Int(timeout)) s; the operation may still be running (see .sagedev/logs/database.log)")
            return nil
        }
    }

    static func displayName(_ command: String) -> String {
        command.hasPrefix("db-") ? "db " + command.dropFirst(3) : command
    }

    /// "  drop database       12 ms  DROP DATABASE sage WITH (FORCE)"
    static func printStep(_ out: Output, _ step: DatabaseStepEvent) {
        let time = DatabaseStep.format(step.ms)
        let pad = String(repeating: " ", count: max(0, 9 - time.count))
        out.line("  \(step.name.padding(18))\(pad)\(out.paint(time, .cyan))  \(out.paint(step.detail, .dim))")
    }

    /// `--json`: the reply as one line, with the schema version `"v": 1` beside its fields.
    static func printJSON<T: Encodable>(_ out: Output, _ value: T) throws {
        out.line(try jsonLine(Versioned(value: value)))
    }
}

/// A JSON document with its schema version: `{"v":1, …the value's fields}`.
struct Versioned<T: Encodable>: Encodable {
    var v = 1
    var value: T
    enum Keys: String, CodingKey { case v }
    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(v, forKey: .v)
    }
}

/// One line of JSON with sorted keys.
func jsonLine<T: Encodable>(_ value: T) throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try e.encode(value), as: UTF8.self)
}
