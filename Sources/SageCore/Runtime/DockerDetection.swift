import SageSystem

/// Is a Docker engine there, and which Compose? Used by `auto` runtime selection and by `doctor`.
public enum ComposeSupport {
    public struct Finding: Sendable { public var ok: Bool; public var detail: String }

    /// An engine answers `docker info` within 2 s.
    public static func engineReachable(environment: [String: String]) -> Finding {
        guard ProcessEnvironment.which("docker", path: environment["PATH"]) != nil else {
            return Finding(ok: false, detail: "no docker client on PATH")
        }
        do {
            let r = try Subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], environment: environment, deadline: .after(seconds: 2))
            if r.status.isSuccess { return Finding(ok: true, detail: "engine \(r.stdoutText.trimmed) answers (\(environment["DOCKER_HOST"] ?? "default socket"))") }
            return Finding(ok: false, detail: "no engine answers: \(r.stderrText.trimmed.split(separator: "\n").last.map(String.init) ?? "docker info failed")")
        } catch {
            return Finding(ok: false, detail: "no engine answered within 2 s")
        }
    }

    /// Compose v2 (`docker compose`), else v1 (`docker-compose`), else none.
    public static func composeVersion(environment: [String: String]) -> Finding {
        if let r = try? Subprocess.run(["docker", "compose", "version", "--short"], environment: environment, deadline: .after(seconds: 5)),
           r.status.isSuccess {
            let v = r.stdoutText.trimmed
            return Finding(ok: v.hasPrefix("2") || v.hasPrefix("v2"), detail: "docker compose \(v)")
        }
        if let r = try? Subprocess.run(["docker-compose", "version", "--short"], environment: environment, deadline: .after(seconds: 5)),
           r.status.isSuccess {
            return Finding(ok: false, detail: "only docker-compose v1 (\(r.stdoutText.trimmed)) found; sagedev uses it with a warning")
        }
        return Finding(ok: false, detail: "neither docker compose v2 nor docker-compose found")
    }
}

