import SageSystem

/// A value that builds `docker compose -p <project> -f <file> --env-file <.env> …` command lines and runs them.
/// Every failed invocation becomes a RuntimeError carrying the command, its exit code and its stderr, with any
/// secret in `secrets` shown as ****.
public struct ComposeCLI: Sendable, Equatable {
    public var installation: ComposeInstallation
    public var project: String
    public var file: String
    public var envFile: String?
    /// The children's environment (PATH, DOCKER_HOST, and the variables the compose file interpolates).
    public var environment: [String: String]
    public var workingDirectory: String?
    /// Values never shown in messages (passwords).
    public var secrets: [String]

    public init(installation: ComposeInstallation, project: String, file: String, envFile: String?,
                environment: [String: String], workingDirectory: String? = nil, secrets: [String] = []) {
        self.installation = installation; self.project = project; self.file = file; self.envFile = envFile
        self.environment = environment; self.workingDirectory = workingDirectory; self.secrets = secrets
    }

    // MARK: command lines

    /// `docker compose [--ansi never] -p P -f FILE [--env-file ENV]`.
    public var base: [String] {
        var argv = installation.command
        if !installation.isLegacy { argv += ["--ansi", "never"] }
        argv += ["-p", project, "-f", file]
        if let envFile { argv += ["--env-file", envFile] }
        return argv
    }

    public func up(_ services: [String] = [], build: Bool = false, noDeps: Bool = false, removeOrphans: Bool = true) -> [String] {
        var a = base + ["up", "-d"]
        if removeOrphans { a.append("--remove-orphans") }
        if noDeps { a.append("--no-deps") }
        if build { a.append("--build") }
        return a + services
    }

    public func ps(all: Bool = true) -> [String] {
        base + ["ps"] + (all ? ["--all"] : []) + ["--format", "json"]
    }

    /// `logs -f --timestamps --no-log-prefix [--since T] [--tail N] svc`: one line per container line, each
    /// prefixed by its RFC 3339 timestamp.
    public func logs(_ service: String, follow: Bool = true, since: String? = nil, tail: String? = nil) -> [String] {
        var a = base + ["logs"]
        if follow { a.append("-f") }
        a += ["--timestamps", "--no-log-prefix"]
        if let since { a += ["--since", since] }
        if let tail { a += ["--tail", tail] }
        return a + [service]
    }

    public func restart(_ services: [String], timeoutSeconds: Int? = nil) -> [String] {
        base + ["restart"] + (timeoutSeconds.map { ["-t", String($0)] } ?? []) + services
    }

    public func stop(_ services: [String] = [], timeoutSeconds: Int? = nil) -> [String] {
        base + ["stop"] + (timeoutSeconds.map { ["-t", String($0)] } ?? []) + services
    }

    /// `rm --stop --force [--volumes] [svc…]`: stops and removes containers; `--volumes` removes their anonymous
    /// volumes (named volumes stay).
    public func rm(_ services: [String] = [], anonymousVolumes: Bool = true) -> [String] {
        base + ["rm", "--stop", "--force"] + (anonymousVolumes ? ["--volumes"] : []) + services
    }

    public func down(volumes: Bool, removeOrphans: Bool = true, timeoutSeconds: Int? = nil) -> [String] {
        var a = base + ["down"]
        if volumes { a.append("--volumes") }
        if removeOrphans { a.append("--remove-orphans") }
        if let t = timeoutSeconds { a += ["-t", String(t)] }
        return a
    }

    /// `exec -T [-e K=V…] [-w DIR] svc command…`. Environment values go through our environment (`-e K`),
    /// never onto the command line, so they cannot be read from /proc.
    public func exec(_ service: String, _ command: [String], environmentKeys: [String] = [], workdir: String? = nil) -> [String] {
        var a = base + ["exec", "-T"]
        for k in environmentKeys { a += ["-e", k] }
        if let workdir { a += ["-w", workdir] }
        return a + [service] + command
    }

    /// `run --rm -T --no-deps [-e K…] svc command…`: a one-off container when the service is not running.
    public func run(_ service: String, _ command: [String], environmentKeys: [String] = []) -> [String] {
        var a = base + ["run", "--rm", "-T", "--no-deps"]
        for k in environmentKeys { a += ["-e", k] }
        return a + [service] + command
    }

    /// `docker events` for this project's container deaths, as JSON lines.
    public func events(since: String? = nil, actions: [String] = ["die"]) -> [String] {
        var a = [installation.docker, "events", "--format", "{{json .}}",
                 "--filter", "type=container", "--filter", "label=com.docker.compose.project=\(project)"]
        for act in actions { a += ["--filter", "event=\(act)"] }
        if let since { a += ["--since", since] }
        return a
    }

    public func inspect(_ ids: [String]) -> [String] { [installation.docker, "inspect", "--type", "container"] + ids }
    public func imageInspect(_ images: [String]) -> [String] {
        [installation.docker, "image", "inspect", "--format", "{{.Id}}"] + images
    }
    public func pull(_ image: String) -> [String] { [installation.docker, "pull", "--quiet", image] }

    /// `docker ps` for the project, for Compose v1 which has no `ps --format json`.
    public func dockerPS() -> [String] {
        [installation.docker, "ps", "--all", "--no-trunc", "--filter", "label=com.docker.compose.project=\(project)",
         "--format", "{{json .}}"]
    }
}
