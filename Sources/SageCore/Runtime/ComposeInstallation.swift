import Foundation
import SageSystem

/// Which Docker Compose this machine has, found once by `ComposeInstallation.detect`.
public struct ComposeInstallation: Sendable, Equatable {
    public enum Flavor: String, Sendable, Equatable {
        /// `docker compose`: the v2 CLI plugin.
        case plugin
        /// `docker-compose`: a standalone binary (v1, or a v2 build installed under that name).
        case standalone
    }
    public var flavor: Flavor
    /// The docker CLI (also used for `docker events`, `docker inspect` and `docker image …`).
    public var docker: String
    /// `docker-compose` for the standalone flavour.
    public var standalone: String?
    /// As printed by `version --short`, e.g. "2.26.1".
    public var version: String
    /// Set when sagedev works with this Compose but the user should upgrade.
    public var warning: String?

    public init(flavor: Flavor, docker: String, standalone: String? = nil, version: String, warning: String? = nil) {
        self.flavor = flavor; self.docker = docker; self.standalone = standalone; self.version = version; self.warning = warning
    }

    /// True for Compose v1 (1.x), which has no `ps --format json`.
    public var isLegacy: Bool { version.hasPrefix("1.") }

    /// argv prefix that runs Compose.
    public var command: [String] {
        switch flavor {
        case .plugin: return [docker, "compose"]
        case .standalone: return [standalone ?? "docker-compose"]
        }
    }

    /// Finds Compose v2 (`docker compose`), else `docker-compose` (v1 works, with a warning), else fails with a
    /// message that says how to install it.
    public static func detect(environment: [String: String], deadline: Deadline = .after(seconds: 10)) throws -> ComposeInstallation {
        let path = environment["PATH"]
        let docker = ProcessEnvironment.which("docker", path: path)
        if let docker,
           let r = try? Subprocess.run([docker, "compose", "version", "--short"], environment: environment, deadline: deadline),
           r.status.isSuccess {
            let v = cleanVersion(r.stdoutText)
            if !v.isEmpty { return ComposeInstallation(flavor: .plugin, docker: docker, version: v) }
        }
        if let legacy = ProcessEnvironment.which("docker-compose", path: path),
           let r = try? Subprocess.run([legacy, "version", "--short"], environment: environment, deadline: deadline),
           r.status.isSuccess {
            let v = cleanVersion(r.stdoutText)
            let warning = v.hasPrefix("1.")
                ? "only Docker Compose v1 (docker-compose \(v)) is installed; sagedev uses it, but v1 is end-of-life: install the Compose v2 plugin (scripts/bootstrap.sh does, or your distribution's docker-compose-plugin)"
                : nil
            return ComposeInstallation(flavor: .standalone, docker: docker ?? "docker", standalone: legacy, version: v, warning: warning)
        }
        if docker == nil {
            throw RuntimeError(nil, "the docker CLI is not installed (not found on PATH), so the compose runtime cannot run: install Docker (scripts/bootstrap.sh installs docker.io and the Compose v2 plugin) or set SAGEDEV_RUNTIME=native in .env; `sagedev doctor` checks this")
        }
        throw RuntimeError(nil, "Docker Compose is not installed: neither `docker compose` (the v2 plugin) nor `docker-compose` works: install the Compose v2 plugin (scripts/bootstrap.sh does) or set SAGEDEV_RUNTIME=native in .env; `sagedev doctor` checks this")
    }

    static func cleanVersion(_ s: String) -> String {
        var v = s.trimmingCharacters(in: .whitespacesAndNewlines)
        if v.hasPrefix("v") { v.removeFirst() }
        return v
    }
}
