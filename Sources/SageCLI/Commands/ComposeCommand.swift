import SageCore
import SageSystem

/// `sagedev compose [--write]`: the compose file for the project's `.env`.
struct ComposeCommand: Command {
    static let name = "compose"
    static let summary = "Print the docker compose file generated from .env, or write it to .sagedev/compose.yaml."
    static let options: [OptionSpec] = [
        OptionSpec("--write", short: "w",
                   help: "Write .sagedev/compose.yaml (mode 0600) and the two dev Dockerfiles beside it instead of printing."),
    ]
    static let discussion = """
        The output is deterministic: the same .env gives the same bytes. Passwords and application secrets
        appear only as ${VAR:?...} references that Compose resolves from .env, and every published port binds
        SAGEDEV_BIND_ADDRESS (127.0.0.1 unless set). Paths are relative to the file's directory, so run it as:
          docker compose --env-file .env --file .sagedev/compose.yaml up
        Configuration problems are printed as file:line:column: message, and the command exits 78.
        """

    let write: Bool

    init(parsing p: ParsedArguments) throws {
        try p.rejectArguments()
        write = p.has("--write")
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let paths = Project.paths(context)
        let config = try loadPlacedConfig(context, paths)
        let unsafe = ComposeFile.unsafeSecretKeys(config)
        if !unsafe.isEmpty {
            for key in unsafe {
                context.output.error("\(paths.envFile): \(key) may only hold \(ComposeFile.urlSafeCharacters) in a compose file, which places it in a connection URL unescaped; choose another password or use SAGEDEV_RUNTIME=native")
            }
            throw CLIError(ExitCode.config, "the compose file cannot carry \(unsafe.joined(separator: " and ")) as it is")
        }
        let text = ComposeFile.generate(config)
        guard write else {
            context.output.write(text)
            return ExitCode.success
        }
        do {
            try FileDescriptor.makeDirectories(paths.state, mode: 0o755)
            try FileDescriptor.writeFileAtomically(paths.compose, Array(text.utf8), mode: 0o600)
            for s in config.services.specs.filter(\.isApp).map(\.id) {
                try FileDescriptor.writeFileAtomically(paths.state + "/" + ComposeFile.dockerfileName(s),
                                                       Array(ComposeFile.dockerfile(for: s).utf8), mode: 0o644)
            }
        } catch let e as SystemError {
            throw CLIError(ExitCode.failure, "could not write \(paths.compose): \(e.message)")
        }
        let apps = config.services.specs.filter(\.isApp).map(\.id.rawValue).joined(separator: ", ")
        context.output.line("wrote \(paths.compose) and the dev Dockerfiles of \(apps) beside it")
        context.output.line("run: docker " + ComposeFile.composeArguments(config: config, composeFile: paths.compose)
            .map(shellWord).joined(separator: " ") + " up")
        return ExitCode.success
    }

    /// A word as a shell would need it (single-quoted when it holds anything unusual).
    func shellWord(_ w: String) -> String {
        let plain = !w.isEmpty && w.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_./=:@+,".unicodeScalars.contains($0)
        }
        return plain ? w : "'" + w.replacing("'", with: "'\\''") + "'"
    }
}
