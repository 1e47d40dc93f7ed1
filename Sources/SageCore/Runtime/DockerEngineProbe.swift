import Foundation
import SageSystem

/// Talking to the Docker engine itself (not Compose): is it there, and which version.
public enum DockerEngineProbe {
    /// Where the docker CLI will connect, for messages.
    public static func describeHost(_ environment: [String: String]) -> String {
        if let h = environment["DOCKER_HOST"], !h.isEmpty { return h }
        if let c = environment["DOCKER_CONTEXT"], !c.isEmpty { return "docker context \(c)" }
        return "unix:///var/run/docker.sock"
    }

    /// True when `docker info` answers within `seconds` (2 s for the `auto` runtime choice).
    public static func answers(environment: [String: String], within seconds: Double = 2) -> Bool {
        guard let docker = ProcessEnvironment.which("docker", path: environment["PATH"]) else { return false }
        guard let r = try? Subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], environment: environment,
                                          deadline: .after(seconds: seconds)) else { return false }
        return r.status.isSuccess && !r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// The engine's version ("20.10.24+dfsg1"), or an error that says the engine is unreachable and what to do.
    public static func serverVersion(environment: [String: String], deadline: Deadline = .after(seconds: 5)) throws -> String {
        guard let docker = ProcessEnvironment.which("docker", path: environment["PATH"]) else {
            throw RuntimeError(nil, "the docker CLI is not installed (not found on PATH): install Docker or set SAGEDEV_RUNTIME=native in .env")
        }
        let host = describeHost(environment)
        let r: CompletedProcess
        do {
            r = try Subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], environment: environment, deadline: deadline)
        } catch let e as SystemError where e.code == .timedOut {
            throw RuntimeError(nil, "the Docker engine at \(host) did not answer in time: check that dockerd is running and healthy (`docker info`), or set SAGEDEV_RUNTIME=native in .env")
        }
        let version = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status.isSuccess, !version.isEmpty else {
            let why = ComposeCLI.firstLines(r.stderrText, 3)
            throw RuntimeError(nil, "no Docker engine answers at \(host)\(why.isEmpty ? "" : " (\(why))"): start Docker (e.g. `systemctl start docker`) or point DOCKER_HOST at a running engine, or set SAGEDEV_RUNTIME=native in .env")
        }
        return version
    }

    /// The major version number of an engine version string ("20.10.24+dfsg1" → 20).
    public static func majorVersion(_ version: String) -> Int? {
        Int(version.prefix(while: { $0.isNumber }))
    }
}
