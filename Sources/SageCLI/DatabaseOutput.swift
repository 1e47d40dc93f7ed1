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
    static func request(_ context: CommandContext, _ command: String, _ args: [String: Any] = [:], timeout: Double,
                        quiet: Bool = false) throws -> [String: Any]? {
        let paths = Project.paths(context)
        guard let client = try Project.connectOrAdopt(context, paths) else { throw Project.noDaemon(paths) }
        defer { client.close() }
        let out = context.output
        do {
            return try client.request(command, args, deadline: .after(seconds: timeout)) { event in
                guard !quiet, event["event"] as? String == "step" else { return }
                printStep(out, event)
            }
        } catch let f as DaemonClient.Failure {
            out.error(out.paint("sagedev \(displayName(command)) failed", .red) + ": " + f.message)
            return nil
        } catch let e as SystemError where e.code == .timedOut {
            out.error("sagedev \(displayName(command)): no answer from the daemon after \(Int(timeout)) s; the operation may still be running (see .sagedev/logs/database.log)")
            return nil
        }
    }

    static func displayName(_ command: String) -> String {
        command.hasPrefix("db-") ? "db " + command.dropFirst(3) : command
    }

    /// "  drop database       12 ms  DROP DATABASE sage WITH (FORCE)"
    static func printStep(_ out: Output, _ event: [String: Any]) {
        let name = event["name"] as? String ?? "step"
        let ms = (event["ms"] as? Double) ?? Double(event["ms"] as? Int ?? 0)
        let time = DatabaseStep.format(ms)
        let pad = String(repeating: " ", count: max(0, 9 - time.count))
        out.line("  \(name.padding(18))\(pad)\(out.paint(time, .cyan))  \(out.paint(event["detail"] as? String ?? "", .dim))")
    }

    static func printJSON(_ out: Output, _ object: [String: Any]) throws {
        var o = object; o["v"] = 1
        let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])
        out.line(String(decoding: data, as: UTF8.self))
    }

    static func milliseconds(_ v: Any?) -> Double { (v as? Double) ?? Double(v as? Int ?? 0) }
}
