import Glibc
import SageSystem

/// A private Docker engine for the tests of this process, shared by all of them.
///
/// The first test that asks for it starts a dockerd with scripts/docker-engine.sh in a short temporary directory
/// (/tmp/sgde-XXXXXX: socket paths must stay under 107 bytes), builds the sagedev-test/* images with
/// scripts/build-test-images.sh (no registry is reachable), and registers an atexit handler that stops the engine
/// by its pid and removes the directory. An engine left behind by a test process that was killed is stopped by
/// the next run: each directory records its owner's pid and start time.
///
/// With SAGEDEV_TEST_DOCKER_HOST set (a test script that manages its own engine), that engine is used instead and
/// left running.
enum DockerEngine {
    struct Engine: Sendable {
        /// unix:///tmp/sgde-…/docker.sock
        let host: String
        /// The engine's directory, when this process started it.
        let directory: String?
        let startMilliseconds: Double
        let imagesMilliseconds: Double

        /// This process's environment pointed at the engine.
        var environment: [String: String] {
            var env = ProcessEnvironment.current()
            env["DOCKER_HOST"] = host
            env.removeValue(forKey: "DOCKER_CONTEXT")
            return env
        }
    }

    static let engineScript = Repo.root + "/scripts/docker-engine.sh"
    static let imagesScript = Repo.root + "/scripts/build-test-images.sh"

    /// The shared engine, started (and the images built) on first use.
    static func shared() throws -> Engine {
        try started.get()
    }

    private static let started: Result<Engine, TestFailure> = {
        do { return .success(try start()) } catch let e as TestFailure { return .failure(e) } catch {
            return .failure(TestFailure("\(error)"))
        }
    }()

    private static let owned = Locked<String?>(nil)

    private static func start() throws -> Engine {
        let t0 = monotonicNanoseconds()
        var host: String
        var directory: String?
        if let external = ProcessEnvironment.current()["SAGEDEV_TEST_DOCKER_HOST"], !external.isEmpty {
            host = external
        } else {
            reapAbandonedEngines()
            var template = Array("/tmp/sgde-XXXXXX".utf8CString)
            guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp for the engine directory failed") }
            let dir = String(cString: p)
            if let st = ProcFS.startTime(pid: getpid()) {
                try FileDescriptor.writeFileAtomically(dir + "/owner", Array("\(getpid()) \(st)\n".utf8))
            }
            owned.withValue { $0 = dir }
            atexit { DockerEngine.stopOwnedEngine() }
            let r = try Subprocess.run(["bash", engineScript, "start", dir], deadline: .after(seconds: 120))
            guard r.status.isSuccess,
                  let line = r.stdoutText.split(separator: "\n").first(where: { $0.hasPrefix("DOCKER_HOST=") }) else {
                throw TestFailure("scripts/docker-engine.sh start \(dir) failed (\(r.status)): \(r.stderrText)")
            }
            host = String(line.dropFirst("DOCKER_HOST=".count))
            directory = dir
        }
        let started = millisecondsSince(t0)
        let t1 = monotonicNanoseconds()
        var env = ProcessEnvironment.current()
        env["DOCKER_HOST"] = host
        let b = try Subprocess.run(["bash", imagesScript], environment: env, deadline: .after(seconds: 300))
        guard b.status.isSuccess else {
            throw TestFailure("scripts/build-test-images.sh failed (\(b.status)): \(b.stderrText)")
        }
        return Engine(host: host, directory: directory, startMilliseconds: started, imagesMilliseconds: millisecondsSince(t1))
    }

    /// Runs at process exit: stops the engine this process started, by its pid, and removes its directory.
    static func stopOwnedEngine() {
        guard let dir = owned.withValue({ d -> String? in defer { d = nil }; return d }) else { return }
        _ = try? Subprocess.run(["bash", engineScript, "stop", dir], deadline: .after(seconds: 90))
        removeTree(dir)
    }

    /// Engines whose owning test process is gone (killed before its atexit ran) are stopped and removed.
    private static func reapAbandonedEngines() {
        guard let d = opendir("/tmp") else { return }
        var dirs: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix("sgde-") { dirs.append("/tmp/" + name) }
        }
        closedir(d)
        for dir in dirs {
            guard let text = FileDescriptor.readText(dir + "/owner") else { continue }
            let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard parts.count >= 2, let pid = Int32(parts[0]), let st = UInt64(parts[1]) else { continue }
            if ProcFS.startTime(pid: pid) == st { continue }  // its owner still runs
            _ = try? Subprocess.run(["bash", engineScript, "stop", dir], deadline: .after(seconds: 90))
            removeTree(dir)
        }
    }
}
