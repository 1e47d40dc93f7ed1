import Glibc
import Foundation
import SageSystem

/// A git repository holding the example Sage stack, and checkouts of it made with `git worktree add`, all with the
/// same `.env` (the same configured ports) and one shared instance registry, as on a developer's machine.
final class ExampleRepository: @unchecked Sendable {
    let root = makeTempDirectory("sagedev-repo")
    var repository: String { root + "/repo" }
    /// XDG_STATE_HOME shared by every checkout: one registry.
    var state: String { root + "/state" }
    let ports = (postgres: freePort(), valkey: freePort(), backend: freePort(), frontend: freePort())
    let runtime: String
    let extraEnv: [String: String]
    let processEnvironment: [String: String]
    private var checkouts: [TestProject] = []

    init(runtime: String = "native", extraEnv: [String: String] = [:], processEnvironment: [String: String] = [:]) throws {
        self.runtime = runtime; self.extraEnv = extraEnv; self.processEnvironment = processEnvironment
        try FileDescriptor.makeDirectories(repository, mode: 0o755)
        try run(["cp", "-R", Repo.root + "/examples/sage/apps", Repo.root + "/examples/sage/db", repository + "/"])
        try FileDescriptor.writeFileAtomically(repository + "/.gitignore", Array(".env\n.sagedev/\nnode_modules/\n".utf8))
        try git(["init", "-q", "-b", "main"])
        try git(["add", "."])
        try git(["commit", "-q", "-m", "the example"])
    }

    /// `git worktree add -b NAME ROOT/NAME`, with the repository's `.env` written into it.
    func checkout(_ name: String) throws -> TestProject {
        try git(["worktree", "add", "-q", "-b", name, root + "/" + name])
        var env = processEnvironment
        env["XDG_STATE_HOME"] = state
        let p = try TestProject(runtime: runtime, extraEnv: extraEnv, processEnvironment: env, checkout: root + "/" + name, ports: ports)
        checkouts.append(p)
        return p
    }

    private func git(_ args: [String]) throws {
        try run(["git", "-c", "user.name=sagedev tests", "-c", "user.email=tests@sagedev.invalid", "-C", repository] + args)
    }

    private func run(_ argv: [String]) throws {
        let r = try Subprocess.run(argv, environment: ["PATH": "/usr/bin:/bin", "HOME": root], deadline: .after(seconds: 60))
        guard r.status.isSuccess else { throw TestFailure("\(argv.joined(separator: " ")): \(r.stderrText)") }
    }

    deinit {
        checkouts.removeAll()  // each stops its stack and removes its directory
        removeTree(root)
    }
}

extension TestProject {
    /// `sagedev env --format json`, parsed.
    func connectionValues(showSecrets: Bool = true) throws -> [String: String] {
        let r = try sagedev(["env", "--format", "json"] + (showSecrets ? ["--show-secrets"] : []), timeout: 30)
        guard r.status.isSuccess, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: String] else {
            throw TestFailure("sagedev env printed no object: \(r.stdoutText) \(r.stderrText)")
        }
        return obj
    }

    /// The environment the service's process actually got: /proc/<pid>/environ of its session's newest process
    /// (the dev server under the /bin/sh that sagedev spawned).
    func serviceEnvironment(_ service: String) -> [String: String]? {
        guard let leader = pidRecord(service)?.pid else { return nil }
        let members = ProcFS.processes(inSession: leader)
        return (members.max().flatMap { ProcFS.environment(pid: $0) }) ?? ProcFS.environment(pid: leader)
    }

    var allServicesHealthy: Bool {
        guard let s = try? status() else { return false }
        return ["postgres", "valkey", "backend", "frontend"].allSatisfy { service(s, $0)["state"] as? String == "healthy" }
    }
}

/// Runs each body on its own thread, all released at the same moment, and returns their results in order.
func simultaneously<T: Sendable>(_ bodies: [@Sendable () throws -> T]) -> [Result<T, any Error>] {
    let results = Locked([Result<T, any Error>?](repeating: nil, count: bodies.count))
    let ready = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0), done = DispatchGroup()
    for (i, body) in bodies.enumerated() {
        done.enter()
        let t = Thread {
            ready.signal()
            go.wait()
            let r = Result { try body() }
            results.withValue { $0[i] = r }
            done.leave()
        }
        t.start()
    }
    for _ in bodies { _ = ready.wait(timeout: .now() + 30) }
    for _ in bodies { go.signal() }
    // Each body carries its own deadline (the subprocess it runs); this one only bounds the whole.
    _ = done.wait(timeout: .now() + 900)
    return results.current.map { $0 ?? .failure(TestFailure("did not finish within 900 s")) }
}

/// psql with a connection URL (the one a service got), returning trimmed stdout.
func psql(url: String, _ sql: String) throws -> String {
    let r = try Subprocess.run([try Repo.tool("psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                               environment: ["PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"], deadline: .after(seconds: 30))
    guard r.status.isSuccess else { throw TestFailure("psql \(sql): \(r.stderrText)") }
    return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}
