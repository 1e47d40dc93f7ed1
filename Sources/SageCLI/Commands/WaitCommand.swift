import SageCore
import SageSystem

/// `sagedev wait [--timeout SECONDS] [--json] URL...`: blocks until every target answers as ready,
/// speaking each service's own protocol. For onboarding scripts and CI as much as for people.
struct WaitCommand: Command {
    static let name = "wait"
    static let summary = "Wait until Postgres, Valkey, HTTP or TCP targets answer as ready."
    static let arguments = "URL..."
    static let options = [
        OptionSpec("--timeout", value: "SECONDS", help: "Give up after this many seconds (default 60)."),
        OptionSpec("--json", help: "Print one JSON object per target (url, kind, state, elapsed_ms, attempts, reason)."),
    ]
    static let discussion = """
    URLS:
      postgres://user:password@host:port/db      ready once login and SELECT 1 succeed (also postgresql://)
      valkey://[user][:password]@host:port[/db]  ready on PONG after AUTH (also redis://)
      http://host:port/path                      ready on a 2xx answer to GET
      tcp://host:port                            ready once a connection is accepted
    User names and passwords may be percent-encoded; IPv6 hosts go in brackets ([::1]).

    All targets are checked at once: every ~10 ms at first, easing to every 250 ms after 5 s.
    Each line reports a target as it becomes ready, with the milliseconds it took.
    Exit 0 when all are ready; 1 on timeout or as soon as a target cannot become ready (wrong
    password, missing database, another kind of server on the port), listing every target that is
    not ready with its last reason; 64 for a malformed URL. Passwords are never printed.
    """

    let targets: [TargetURL]
    let timeoutSeconds: Double
    let json: Bool

    init(parsing p: ParsedArguments) throws {
        guard !p.positionals.isEmpty else {
            throw CLIError.usage("give at least one URL to wait for, like valkey://127.0.0.1:6379 (see sagedev wait --help)")
        }
        timeoutSeconds = try p.double("--timeout", range: 0...604_800) ?? 60
        json = p.has("--json")
        targets = try p.positionals.map { raw in
            do { return try TargetURL(parsing: raw) } catch let e as SystemError { throw CLIError.usage(e.message) }
        }
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let out = context.output
        let urls = targets.map(\.redacted)
        let secrets = Secrets(targets)
        let json = self.json
        let attemptTimeout = max(100, min(2000, Int(timeoutSeconds * 1000)))
        let result = ProbeWaiter(attemptTimeoutMilliseconds: attemptTimeout)
            .wait(for: targets.map { $0.makeProbe() }, deadline: .after(seconds: timeoutSeconds)) { report in
                guard report.outcome.isReady else { return }
                let line = json
                    ? Self.jsonLine(url: urls[report.index], kind: targets[report.index].kind, report: report, state: "ready")
                    : "\(urls[report.index]) \(out.paint("ready", .green)) in \(Self.milliseconds(report.elapsedMilliseconds)) ms"
                out.line(secrets.scrub(line))
            }
        if result.allReady { return ExitCode.success }

        // Every target that is not ready, with its last reason; the fatal one first.
        var unready = result.unready
        if let fatal = result.fatal, let i = unready.firstIndex(where: { $0.index == fatal.index }) {
            unready.insert(unready.remove(at: i), at: 0)
        }
        for report in unready {
            let url = urls[report.index]
            if json {
                let state = report.outcome.isFatal ? "fatal" : "not_ready"
                out.line(secrets.scrub(Self.jsonLine(url: url, kind: targets[report.index].kind, report: report, state: state)))
            } else {
                let label = report.outcome.isFatal ? out.paint("failed", .red) : out.paint("not ready", .yellow)
                out.error(secrets.scrub("\(url) \(label): \(report.outcome.reason)"))
            }
        }
        let readyCount = result.reports.count - unready.count
        let summary: String
        if let fatal = result.fatal {
            summary = "\(urls[fatal.index]) cannot become ready; stopped after \(Self.milliseconds(fatal.elapsedMilliseconds)) ms with \(readyCount) of \(result.reports.count) ready"
        } else {
            summary = "timed out after \(Self.seconds(timeoutSeconds)) with \(unready.count) of \(result.reports.count) targets not ready"
        }
        out.error(secrets.scrub("sagedev wait: \(summary)"))
        return ExitCode.failure
    }

    // MARK: formatting

    static func milliseconds(_ ms: Double) -> String { String(Int(ms.rounded())) }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() && s < 1e9 ? "\(Int(s)) s" : "\(s) s"
    }

    static func jsonLine(url: String, kind: TargetURL.Kind, report: ProbeReport, state: String) -> String {
        let elapsed = (report.elapsedMilliseconds * 10).rounded() / 10
        return "{\"url\":\(jsonString(url)),\"kind\":\"\(kind.rawValue)\",\"state\":\"\(state)\",\"elapsed_ms\":\(elapsed),\"attempts\":\(report.attempts),\"reason\":\(jsonString(report.outcome.reason))}"
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = Array("0123456789abcdef".unicodeScalars)
                out += "\\u00"; out.unicodeScalars.append(hex[Int(u.value >> 4)]); out.unicodeScalars.append(hex[Int(u.value & 15)])
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// A last line of defence: the passwords given on the command line, blanked out of anything printed.
/// (No message is built from a password in the first place.) Very short passwords are left alone so
/// that ordinary words are not mangled.
private struct Secrets: Sendable {
    let values: [String]
    init(_ targets: [TargetURL]) {
        var v = Set<String>()
        for t in targets {
            guard let p = t.password, p.count >= 4 else { continue }
            v.insert(p); v.insert(TargetURL.percentEncode(p))
        }
        values = v.sorted { $0.count > $1.count }
    }
    func scrub(_ s: String) -> String {
        var s = s
        for v in values where s.contains(v) { s = s.replacing(v, with: "****") }
        return s
    }
}
