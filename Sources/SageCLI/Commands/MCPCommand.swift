import Foundation
import Dispatch
import SageCore
import SageWire
import SageSystem

/// `sagedev mcp`: a Model Context Protocol server on stdin/stdout for coding agents. Each tool runs the same code
/// as the CLI command it stands for, in this process, and answers with what that command prints.
struct MCPCommand: Command {
    static let name = "mcp"
    static let summary = "Serve the Model Context Protocol over stdio (tools: status, logs, restart, reset_db, wait, env, db_clone, db_drop_clone; each service's log as a resource)."
    static let options: [OptionSpec] = []
    static let discussion = "Register it with an MCP client as the command 'sagedev mcp' run in the project directory. Lines over 1 MiB are refused with a JSON-RPC error; the server ends at the end of its input."
    /// The longest line read; a longer one is answered with an error and skipped.
    static let lineLimit = 1 << 20

    init(parsing p: ParsedArguments) throws { try p.rejectArguments() }

    func run(_ context: CommandContext) throws -> Int32 {
        let tools = MCPTools(context: context)
        let server = MCPServer(name: "sagedev", version: sagedevVersion, instructions: MCPTools.instructions, tools: tools.all,
                               resources: { tools.logResources() }, read: { tools.readLog($0) }, scrub: { tools.scrub($0) })
        let out = context.output
        let calls = DispatchGroup()
        var framer = JSONRPCLineFramer(limit: MCPCommand.lineLimit)
        func take(_ items: [JSONRPCLineFramer.Item]) {
            for item in items {
                switch item {
                case .tooLong: out.write(String(decoding: MCPServer.tooLong(limit: MCPCommand.lineLimit), as: UTF8.self))
                case .line(let line):
                    // Each call runs by itself, so a long `wait` does not hold up a `ping`; answers carry their ids.
                    DispatchQueue.global().async(group: calls) {
                        if let answer = server.answer(line) { out.write(String(decoding: answer, as: UTF8.self)) }
                    }
                }
            }
        }
        while let bytes = context.readInput() { take(framer.append(bytes)) }
        take(framer.finish())
        calls.wait()
        return ExitCode.success
    }
}

/// The tools and resources, each backed by a CLI command run in-process with its output captured.
struct MCPTools: Sendable {
    let context: CommandContext
    let paths: ProjectPaths
    /// Secrets known from `.env` (refreshed on each call), taken out of every answer.
    private let secrets = Locked<[String]>([])

    init(context: CommandContext) {
        self.context = context
        paths = Project.paths(context)
        refreshSecrets()
    }

    static let instructions = "Tools for the project's local stack (PostgreSQL, Valkey, backend, frontend and any extra services): status reports every service; logs reads a service's log; restart and reset_db change the stack (starting it when it is stopped); wait probes URLs until ready; env shows the connection values (or one service's environment), with secrets as ****; db_clone makes a fresh database from the template for a test run, and db_drop_clone drops it."

    var all: [MCPTool] {
        [
            MCPTool(name: "status", title: "Stack status",
                    description: "The status of every service (state, health and last probe latency, pid, uptime, restarts, last exit, Postgres connections, Valkey memory), as `sagedev status --json` reports it. Says so when the stack is stopped; never starts it.",
                    inputSchema: ["type": "object", "properties": [:], "additionalProperties": false]) { _ in status() },
            MCPTool(name: "logs", title: "Service log",
                    description: "The newest lines of one service's log, optionally only those matching a regular expression.",
                    inputSchema: ["type": "object", "required": ["service"], "additionalProperties": false, "properties": [
                        "service": ["type": "string", "description": "A service name, as status lists it."],
                        "tail": ["type": "integer", "minimum": 1, "maximum": 10000, "description": "How many lines (default 100)."],
                        "grep": ["type": "string", "description": "A regular expression; only matching lines are returned."],
                    ]]) { logs($0) },
            MCPTool(name: "restart", title: "Restart services",
                    description: "Restarts the named services (all when none) and waits until they are healthy; starts the stack when it is stopped.",
                    inputSchema: ["type": "object", "additionalProperties": false, "properties": [
                        "services": ["type": "array", "items": ["type": "string"], "description": "Service names; all when empty or absent."],
                    ]]) { restart($0) },
            MCPTool(name: "reset_db", title: "Reset the database",
                    description: "Drops and recreates the app database from the migrated and seeded template, flushes Valkey (unless keep_cache) and restarts what depends on the database. Its data is lost.",
                    inputSchema: ["type": "object", "additionalProperties": false, "properties": [
                        "keep_cache": ["type": "boolean", "description": "Keep Valkey's data (default false)."],
                    ]]) { resetDB($0) },
            MCPTool(name: "wait", title: "Wait for URLs",
                    description: "Waits until each postgres://, valkey://, redis://, http:// or tcp:// target is ready, or the timeout passes; reports each target's milliseconds or its last reason.",
                    inputSchema: ["type": "object", "required": ["targets"], "additionalProperties": false, "properties": [
                        "targets": ["type": "array", "items": ["type": "string"], "description": "URLs to wait for."],
                        "timeout": ["type": "number", "minimum": .double(0.1), "maximum": 3600, "description": "Seconds (default 30)."],
                    ]]) { wait($0) },
            MCPTool(name: "env", title: "Connection values",
                    description: "This checkout's connection values as `sagedev env` prints them (every service's URL and port, the compose project name), or with `service` the whole environment that service is started with. Passwords and other secrets are ****.",
                    inputSchema: ["type": "object", "additionalProperties": false, "properties": [
                        "service": ["type": "string", "description": "One service's whole environment instead."],
                    ]]) { env($0) },
            MCPTool(name: "db_clone", title: "Clone the database",
                    description: "Makes a new database from the migrated and seeded template (a ready copy: milliseconds), for one test run or test worker, and reports its name and URL. The URL's password is ****: it is DATABASE_URL's (`sagedev env --show-secrets` in a shell prints it). Starts the stack when it is stopped.",
                    inputSchema: ["type": "object", "additionalProperties": false, "properties": [
                        "name": ["type": "string", "description": "Lower-case letters, digits, '-' and '_', starting with a letter or digit (default: a new number)."],
                    ]]) { dbClone($0) },
            MCPTool(name: "db_drop_clone", title: "Drop a database clone",
                    description: "Drops one clone made by db_clone, or every clone with all.",
                    inputSchema: ["type": "object", "additionalProperties": false, "properties": [
                        "name": ["type": "string", "description": "The clone's name, as db_clone reported it."],
                        "all": ["type": "boolean", "description": "Drop every clone."],
                    ]]) { dbDropClone($0) },
        ]
    }

    // MARK: running commands

    struct Captured: Sendable {
        var code: Int32
        var out: String
        var err: String
        var text: String { [out, err].filter { !$0.isEmpty }.joined(separator: out.hasSuffix("\n") || out.isEmpty ? "" : "\n").trimmed }
    }

    /// Runs `sagedev ARGS` in this process, capturing what it prints.
    func cli(_ args: [String]) -> Captured {
        let out = Locked(""), err = Locked("")
        var env = context.environment
        env["NO_COLOR"] = "1"
        let c = CommandContext(output: Output(isTTY: false, useColour: false, out: { s in out.withValue { $0 += s } },
                                              err: { s in err.withValue { $0 += s } }),
                               environment: env, workingDirectory: context.workingDirectory, stdinIsTTY: false,
                               readLine: { nil }, executablePath: context.executablePath)
        let code = SageCLI.run(args, context: c)
        return Captured(code: code, out: out.current, err: err.current)
    }

    func result(_ c: Captured, structured: JSONValue? = nil) -> MCPToolResult {
        MCPToolResult(text: c.text.isEmpty ? (c.code == 0 ? "done" : "failed (exit \(c.code))") : c.text, structured: structured, isError: c.code != 0)
    }

    /// Starts the stack when no daemon runs (for the tools that need one); nil when it is up, else the failure.
    func ensureRunning() -> (started: Captured?, failure: MCPToolResult?) {
        guard DaemonLauncher.isRunning(paths) == nil else { return (nil, nil) }
        let up = cli(["up"])
        return up.code == 0 ? (up, nil) : (up, result(up))
    }

    // MARK: tools

    func status() -> MCPToolResult {
        refreshSecrets()
        let c = cli(["status", "--json"])
        guard let line = c.out.split(separator: "\n").first, let doc = JSONValue.parse(Array(line.utf8)) else { return result(c) }
        if doc["running"] == .bool(false) {
            return MCPToolResult(text: "The stack is stopped: no sagedev daemon runs for \(paths.root). Start it with the restart tool or 'sagedev up'.\n\(line)",
                                 structured: doc)
        }
        return MCPToolResult(text: String(line), structured: doc)
    }

    func logs(_ a: JSONValue) -> MCPToolResult {
        let service = a["service"]?.string ?? ""
        let tail = a["tail"]?.int ?? 100
        var pattern: NSRegularExpression?
        if let g = a["grep"]?.string {
            do { pattern = try NSRegularExpression(pattern: g) } catch {
                return MCPToolResult(text: "logs: \"grep\" is not a valid regular expression: \(g)", isError: true)
            }
        }
        let c = cli(["logs", service, "--tail", String(pattern == nil ? tail : 100_000)])
        guard c.code == 0 else { return result(c) }
        var lines = stripPrefix(c.out, service)
        if let pattern {
            lines = lines.filter { pattern.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil }
        }
        lines = Array(lines.suffix(tail))
        let text = lines.isEmpty ? "no \(pattern == nil ? "" : "matching ")lines in the log of \(service)" + (c.err.isEmpty ? "" : " (\(c.err.trimmed))") : lines.joined(separator: "\n")
        return MCPToolResult(text: text)
    }

    func restart(_ a: JSONValue) -> MCPToolResult {
        let services = a["services"]?.array?.compactMap(\.string) ?? []
        let (started, failure) = ensureRunning()
        if let failure { return failure }
        if let started { return MCPToolResult(text: "The stack was stopped; started it.\n" + started.text) }
        return result(cli(["restart"] + services))
    }

    func resetDB(_ a: JSONValue) -> MCPToolResult {
        let (started, failure) = ensureRunning()
        if let failure { return failure }
        let c = cli(["reset-db", "--yes"] + (a["keep_cache"]?.bool == true ? ["--keep-cache"] : []))
        var r = result(c)
        if let started { r.text = "The stack was stopped; started it.\n" + started.text + "\n" + r.text }
        return r
    }

    func wait(_ a: JSONValue) -> MCPToolResult {
        let targets = a["targets"]?.array?.compactMap(\.string) ?? []
        let timeout = a["timeout"]?.number ?? 30
        guard !targets.isEmpty else { return MCPToolResult(text: "wait: \"targets\" needs at least one URL", isError: true) }
        return result(cli(["wait", "--timeout", String(timeout)] + targets))
    }

    /// `sagedev env --format json [--service NAME]`: the same values, redacted (no --show-secrets here, ever).
    func env(_ a: JSONValue) -> MCPToolResult {
        refreshSecrets()
        let c = cli(["env", "--format", "json"] + (a["service"]?.string.map { ["--service", $0] } ?? []))
        guard c.code == 0, let doc = JSONValue.parse(Array(c.out.utf8)), case .object(let values) = doc else { return result(c) }
        let text = values.keys.sorted().map { "\($0)=\(values[$0]?.string ?? "")" }.joined(separator: "\n")
        return MCPToolResult(text: text, structured: doc)
    }

    func dbClone(_ a: JSONValue) -> MCPToolResult {
        let (started, failure) = ensureRunning()
        if let failure { return failure }
        refreshSecrets()
        // `--` first: a name such as "--all" is a name (refused as such), never an option.
        let c = cli(["db", "clone", "--json"] + (a["name"]?.string.map { ["--", $0] } ?? []))
        guard c.code == 0, case .object(var fields)? = JSONValue.parse(Array(c.out.utf8)) else { return result(c) }
        // The URL carries the password for programs; here it is redacted whatever the secret list holds.
        if let url = fields["url"]?.string { fields["url"] = .string(redactingURLPassword(url)) }
        let doc = JSONValue.object(fields)
        var text = "Clone \(doc["name"]?.string ?? "") (database \(doc["database"]?.string ?? "")) made in \(doc["totalMs"]?.number.map { "\($0)" } ?? "?") ms: \(scrub(doc["url"]?.string ?? ""))"
        if let started { text = "The stack was stopped; started it.\n" + started.text + "\n" + text }
        return MCPToolResult(text: text, structured: doc)
    }

    func dbDropClone(_ a: JSONValue) -> MCPToolResult {
        let all = a["all"]?.bool == true
        let name = a["name"]?.string
        guard all != (name != nil) else {
            return MCPToolResult(text: "db_drop_clone: give \"name\" (a clone's name) or \"all\": true, not \(all ? "both" : "neither")", isError: true)
        }
        return result(cli(["db", "drop-clone"] + (all ? ["--all"] : ["--", name!])))
    }

    // MARK: resources

    func logResources() -> [MCPResource] {
        let ids = (ConfigLoader.check(projectDirectory: paths.root, environment: context.environment).config?.services.serviceIDs) ?? []
        return ids.map { MCPResource(uri: "sagedev://logs/\($0.rawValue)", name: "\($0.rawValue) log",
                                     description: "The newest 500 lines of the \($0.rawValue) log (.sagedev/logs/\($0.rawValue).log).") }
    }

    func readLog(_ uri: String) -> String? {
        let prefix = "sagedev://logs/"
        guard uri.hasPrefix(prefix) else { return nil }
        let service = String(uri.dropFirst(prefix.count))
        guard logResources().contains(where: { $0.uri == uri }) else { return nil }
        let c = cli(["logs", service, "--tail", "500"])
        return c.code == 0 ? stripPrefix(c.out, service).joined(separator: "\n") : nil
    }

    // MARK: secrets

    func refreshSecrets(_ known: Config? = nil) {
        guard let c = known ?? ConfigLoader.check(projectDirectory: paths.root, environment: context.environment).config else { return }
        var values = [c.postgres.password, c.valkey.password]
        for (k, v) in c.values where looksSecret(k) { values.append(v) }
        // As the URLs carry them (percent-encoded), and as a stricter encoder would write them.
        values += values.map(percentEncode) + values.map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0 }
        let list = Set(values.filter { !$0.isEmpty }).sorted { $0.count > $1.count }
        secrets.withValue { $0 = list }
    }

    func scrub(_ s: String) -> String {
        var out = s
        for secret in secrets.current where out.contains(secret) { out = out.replacingOccurrences(of: secret, with: "****") }
        return out
    }

    /// `logs` lines without their "service | " prefix.
    func stripPrefix(_ text: String, _ service: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0).map { l in
            guard let bar = l.firstIndex(of: "|"), l[..<bar].trimmingCharacters(in: .whitespaces) == service else { return String(l) }
            let rest = l[l.index(after: bar)...]
            return String(rest.hasPrefix(" ") ? rest.dropFirst() : rest)
        }
    }
}
