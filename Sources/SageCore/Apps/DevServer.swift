import Foundation
import SageSystem

/// The dev servers sagedev knows (`BACKEND_FRAMEWORK`, `FRONTEND_FRAMEWORK`, and any app's `<NAME>_FRAMEWORK`).
public enum DevServerFramework: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case auto, vite, esbuild, nest, none
}

/// What one known dev server needs from sagedev, as data: how `auto` recognises it, the options that make it listen
/// where sagedev probes, the environment it reads, how to tell it to listen right, and how its compiler reports a
/// failed build. A new framework is one more entry in `DevServerRule.all`; nothing else names a framework.
public struct DevServerRule: Sendable, Hashable {
    /// An option added to the dev command unless the command already has `option`. The text may name the
    /// service's `$HOST` and `$PORT` (and other variables of its environment): the shell that runs the dev
    /// command expands them, so one command serves both runtimes.
    public struct Option: Sendable, Hashable {
        public var option: String
        public var text: String
    }
    /// A variable set for the app unless `.env` (or the environment sagedev computes) already sets it, taking the
    /// value of another variable of the app's environment.
    public struct Variable: Sendable, Hashable {
        public var name: String
        public var from: String
    }
    /// A program (and, optionally, one of these arguments after it) whose appearance in the dev command, or in
    /// the package.json script it runs, means this framework.
    public struct CommandMarker: Sendable, Hashable {
        public var program: String
        public var withAnyOf: [String] = []
    }
    /// How a compiler running inside the dev server reports its builds in the log.
    public struct BuildReport: Sendable, Hashable {
        /// A line holding this is an error of the build in progress.
        public var errorMarker: String
        /// A line holding this ends a build ("Found 1 error. Watching for file changes.").
        public var summaryMarker: String
        /// A summary holding this means the build succeeded.
        public var successMarker: String
        /// What happens to the running app when a build fails.
        public var onError: String
    }

    public var framework: DevServerFramework
    public var name: String
    public var commands: [CommandMarker]
    public var packages: [String]
    public var options: [Option]
    public var environment: [Variable]
    /// How to make it listen where sagedev probes; {host} is the address sagedev probes.
    public var listenFix: String
    public var build: BuildReport?
    /// How long a self-reload may take before sagedev decides the dev server missed the change (a compile step
    /// comes before the restart).
    public var reloadSettleSeconds: Double?
    /// It rebuilds and reloads the page itself on a change, in the same process (no restart to wait for).
    public var reloadsInPlace: Bool = false

    public static let vite = DevServerRule(
        framework: .vite, name: "Vite",
        commands: [CommandMarker(program: "vite")], packages: ["vite"],
        // Vite reads neither PORT nor HOST, may bind ::1 for "localhost", and moves to the next port silently.
        options: [Option(option: "--host", text: "--host \"$HOST\""), Option(option: "--port", text: "--port \"$PORT\""),
                  Option(option: "--strictPort", text: "--strictPort")],
        // Client code sees only VITE_-prefixed variables; this one is how the browser reaches the backend.
        environment: [Variable(name: "VITE_API_URL", from: "BACKEND_PUBLIC_URL")],
        listenFix: "pass --host {host} --port $PORT --strictPort (Vite)", reloadsInPlace: true)

    public static let esbuild = DevServerRule(
        framework: .esbuild, name: "esbuild",
        commands: [CommandMarker(program: "esbuild")], packages: ["esbuild"],
        // esbuild serves only with --serve=HOST:PORT and has no environment for the page: define the URL.
        options: [Option(option: "--serve", text: "--serve=\"$HOST:$PORT\""),
                  Option(option: "--define:process.env.BACKEND_PUBLIC_URL",
                         text: "--define:process.env.BACKEND_PUBLIC_URL=\"\\\"$BACKEND_PUBLIC_URL\\\"\"")],
        environment: [],
        listenFix: "pass --serve={host}:$PORT (esbuild)", reloadsInPlace: true)

    public static let nest = DevServerRule(
        framework: .nest, name: "Nest (tsc --watch)",
        commands: [CommandMarker(program: "nest", withAnyOf: ["start"]), CommandMarker(program: "tsc", withAnyOf: ["--watch", "-w"])],
        packages: ["@nestjs/core"],
        options: [], environment: [],
        listenFix: "listen on process.env.PORT and process.env.HOST in the app's main file (Nest)",
        build: BuildReport(errorMarker: ": error TS", summaryMarker: "Watching for file changes", successMarker: "Found 0 errors",
                           onError: "tsc emits nothing on an error (noEmitOnError), so the last good build keeps running"),
        reloadSettleSeconds: 15)

    /// Every known framework, in the order `auto` tries them.
    public static let all: [DevServerRule] = [.vite, .esbuild, .nest]

    public static func rule(for f: DevServerFramework) -> DevServerRule? { all.first { $0.framework == f } }
}

/// The framework in effect for one app, and why: what `status` and `doctor` show.
public struct DevServerDetection: Sendable, Hashable {
    public var rule: DevServerRule?
    public var setting: DevServerFramework
    public var reason: String
    /// Options of the rule the dev command could not take (a compound shell command), for the person to add.
    public var skippedOptions: [String] = []

    /// "esbuild (auto: the dev command runs esbuild)".
    public var description: String {
        let name = rule?.name ?? "none"
        return setting == .auto ? "\(name) (auto: \(reason))" : "\(name) (\(reason))"
    }
}

public enum DevServerAdapter {
    /// Decides the framework of an app: the setting, or for `auto` the dev command, then the package.json
    /// script it runs, then package.json's dependencies. `packageJSON` is the text of the app's package.json.
    public static func detect(setting: DevServerFramework, devCommand: String, packageJSON: String?) -> DevServerDetection {
        switch setting {
        case .none: return DevServerDetection(rule: nil, setting: setting, reason: "set to none")
        case .vite, .esbuild, .nest: return DevServerDetection(rule: DevServerRule.rule(for: setting), setting: setting, reason: "set in .env")
        case .auto: break
        }
        let manifest = packageJSON.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let commandWords = words(devCommand)
        for rule in DevServerRule.all where matches(rule, commandWords) {
            return DevServerDetection(rule: rule, setting: .auto, reason: "the dev command runs \(rule.commands.first { matches($0, commandWords) }!.program)")
        }
        if let script = scriptName(commandWords), let text = (manifest?["scripts"] as? [String: Any])?[script] as? String {
            let scriptWords = words(text)
            for rule in DevServerRule.all where matches(rule, scriptWords) {
                return DevServerDetection(rule: rule, setting: .auto,
                                          reason: "package.json's \(script) script runs \(rule.commands.first { matches($0, scriptWords) }!.program)")
            }
        }
        let deps = Set(((manifest?["dependencies"] as? [String: Any]) ?? [:]).keys)
            .union(((manifest?["devDependencies"] as? [String: Any]) ?? [:]).keys)
        for rule in DevServerRule.all {
            if let p = rule.packages.first(where: { deps.contains($0) }) {
                return DevServerDetection(rule: rule, setting: .auto, reason: "package.json depends on \(p)")
            }
        }
        return DevServerDetection(rule: nil, setting: .auto,
                                  reason: manifest == nil ? "no known dev server in the dev command, and no package.json"
                                                          : "no known dev server in the dev command or package.json")
    }

    /// The detection the configuration resolved, or (for a spec built by hand) one made now.
    public static func detect(_ app: AppSpec, projectDirectory: String) -> DevServerDetection {
        app.devServer ?? resolve(app, projectDirectory: projectDirectory)
    }

    /// Reads the app's package.json and detects (I/O: one file read).
    static func resolve(_ app: AppSpec, projectDirectory: String) -> DevServerDetection {
        let dir = app.directory.hasPrefix("/") ? app.directory : projectDirectory + "/" + app.directory
        var d = detect(setting: app.framework, devCommand: app.devCommand, packageJSON: FileDescriptor.readText(dir + "/package.json"))
        if let rule = d.rule, isCompound(app.devCommand) {
            d.skippedOptions = rule.options.filter { !has($0.option, in: app.devCommand) }.map(\.text)
        }
        return d
    }

    /// The dev command with the rule's options added (each one the command does not already have). npm needs
    /// `--` before options meant for the script. A compound shell command (`;`, `&&`, `|`, `&`) is left alone:
    /// which part is the dev server is not sagedev's to guess.
    public static func command(_ devCommand: String, rule: DevServerRule?) -> String {
        guard let rule, !isCompound(devCommand) else { return devCommand }
        let missing = rule.options.filter { !has($0.option, in: devCommand) }
        guard !missing.isEmpty else { return devCommand }
        let w = words(devCommand)
        let npmScript = w.first == "npm" && (w.dropFirst().first == "run" || w.dropFirst().first == "run-script"
                                             || w.dropFirst().first == "start" || w.dropFirst().first == "dev")
        let separator = npmScript && !w.contains("--") ? " --" : ""
        return devCommand + separator + " " + missing.map(\.text).joined(separator: " ")
    }

    /// The rule's variables added to an app's environment, unless already set there.
    public static func environment(_ env: [String: String], rule: DevServerRule?) -> [String: String] {
        guard let rule else { return env }
        var out = env
        for v in rule.environment where out[v.name] == nil {
            if let value = env[v.from] { out[v.name] = value }
        }
        return out
    }

    /// Whether the command already gives an option: `--serve`, `--serve=…` or `--serve:…`, not `--servedir`.
    static func has(_ option: String, in command: String) -> Bool {
        words(command).contains { $0 == option || $0.hasPrefix(option + "=") || $0.hasPrefix(option + ":") }
    }

    static func isCompound(_ command: String) -> Bool {
        command.contains(";") || command.contains("&") || command.contains("|") || command.contains("\n") || command.contains("$(")
            || command.contains("`")
    }

    /// Shell-ish words (split on blanks and operators; quotes dropped): enough to find program names.
    static func words(_ command: String) -> [String] {
        var out: [String] = []
        var current = ""
        for ch in command {
            switch ch {
            case " ", "\t", "\n", ";", "&", "|", "(", ")":
                if !current.isEmpty { out.append(current); current = "" }
            case "\"", "'":
                continue
            default:
                current.append(ch)
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    static func program(_ word: String) -> String {
        String(word.split(separator: "/").last ?? Substring(word))
    }

    static func matches(_ marker: DevServerRule.CommandMarker, _ words: [String]) -> Bool {
        for (i, w) in words.enumerated() where program(w) == marker.program {
            if marker.withAnyOf.isEmpty || words[(i + 1)...].contains(where: { marker.withAnyOf.contains($0) }) { return true }
        }
        // `npx vite`, `pnpm exec vite`, `yarn vite` name the program as an argument: covered above, since every
        // word is looked at.
        return false
    }

    static func matches(_ rule: DevServerRule, _ words: [String]) -> Bool {
        rule.commands.contains { matches($0, words) }
    }

    /// The package.json script a dev command runs: `npm run dev`, `npm start`, `pnpm dev`, `yarn dev`, `bun run dev`.
    static func scriptName(_ w: [String]) -> String? {
        guard let tool = w.first.map(program), ["npm", "pnpm", "yarn", "bun"].contains(tool) else { return nil }
        let rest = Array(w.dropFirst())
        guard let first = rest.first else { return tool == "yarn" ? "start" : nil }
        if first == "run" || first == "run-script" { return rest.dropFirst().first }
        if first == "start" { return "start" }
        if tool != "npm" && !first.hasPrefix("-") && !["install", "exec", "add", "x", "dlx"].contains(first) { return first }
        return nil
    }
}

extension ServiceGraph {
    /// The graph with each app's dev server resolved (its package.json read once, here).
    func resolvingDevServers(in projectDirectory: String) -> ServiceGraph {
        ServiceGraph(sorted: specs.map { spec in
            guard case .app(var a) = spec.kind else { return spec }
            a.devServer = nil
            a.devServer = DevServerAdapter.resolve(a, projectDirectory: projectDirectory)
            var s = spec
            s.kind = .app(a)
            return s
        })
    }
}
