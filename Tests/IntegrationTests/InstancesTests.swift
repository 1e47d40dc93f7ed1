import Testing
import Glibc
import Foundation
import SageSystem

/// Several checkouts of one repository running at once (git worktrees): port slots, the per-user registry, their
/// own data and URLs. Real processes, the native runtime, the real binary.
@Suite(.serialized) struct InstancesTests {
    func slot(_ values: [String: String]) -> Int { Int(values["SAGEDEV_SLOT"] ?? "") ?? -1 }
    func ports(_ values: [String: String]) -> [Int] {
        ["POSTGRES_PORT", "VALKEY_PORT", "BACKEND_PORT", "FRONTEND_PORT"].compactMap { values[$0].flatMap { Int($0) } }
    }
    func instances(_ p: TestProject) throws -> [[String: Any]] {
        let r = try p.sagedev(["instances", "--json"], timeout: 30)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any]
        return obj?["instances"] as? [[String: Any]] ?? []
    }
    func entry(_ list: [[String: Any]], _ p: TestProject) -> [String: Any] {
        list.first { $0["directory"] as? String == p.root } ?? [:]
    }

    @Test func threeWorktreesRunSideBySideWithTheirOwnPortsDataAndURLs() throws {
        let repo = try ExampleRepository(extraEnv: ["API_URL": "http://127.0.0.1:${BACKEND_PORT}"])
        let a = try repo.checkout("a"), b = try repo.checkout("b"), c = try repo.checkout("c")

        // All three come up at once.
        let ups = simultaneously([a, b, c].map { p in { @Sendable in try p.sagedev(["up"]) } })
        for (p, r) in zip([a, b, c], ups) {
            let done = try r.get()
            #expect(done.status == .exited(0), "\(p.root): \(done.stdoutText)\n\(done.stderrText)")
        }
        let values = try [a, b, c].map { try $0.connectionValues() }
        #expect(Set(values.map(slot)).count == 3, "\(values)")
        #expect(Set(values.flatMap(ports)).count == 12, "every service of every checkout has its own port: \(values)")
        #expect(Set(values.map { $0["SAGEDEV_PROJECT"] ?? "" }).count == 3)
        for p in [a, b, c] { #expect(p.allServicesHealthy, "\(p.root) is not healthy") }

        // A row written through A's DATABASE_URL is absent from B's and C's databases.
        _ = try psql(url: values[0]["DATABASE_URL"]!, "CREATE TABLE worktree_marker(v text); INSERT INTO worktree_marker VALUES ('written in a')")
        #expect(try psql(url: values[0]["DATABASE_URL"]!, "SELECT v FROM worktree_marker") == "written in a")
        for v in values[1...] { #expect(try psql(url: v["DATABASE_URL"]!, "SELECT to_regclass('worktree_marker') IS NULL") == "t") }

        // B's frontend got B's ports, and what .env derives from BACKEND_PORT points at B's backend.
        let bValues = values[1]
        let frontend = try #require(b.serviceEnvironment("frontend"))
        #expect(frontend["PORT"] == bValues["FRONTEND_PORT"])
        #expect(frontend["API_URL"] == "http://127.0.0.1:\(bValues["BACKEND_PORT"]!)")
        if let backendURL = frontend["BACKEND_URL"] { #expect(backendURL.contains(":\(bValues["BACKEND_PORT"]!)")) }
        // (The first `tsc --watch` pass can restart the backend just after `up`: pid record and listener are read
        // together until they agree.)
        var seen = ""
        let ownedByB = waitUntil(.after(seconds: 20)) {
            guard let bBackend = b.pidRecord("backend")?.pid else { seen = "no pid record"; return false }
            let owners = ProcFS.listeners(port: Int(bValues["BACKEND_PORT"]!)!).compactMap(\.pid)
            seen = "backend pid \(bBackend); listeners \(owners.map { "\($0) (session \(ProcFS.sessionID(pid: $0).map(String.init) ?? "?"))" })"
            return owners.contains { ProcFS.sessionID(pid: $0) == bBackend }
        }
        #expect(ownedByB, "B's backend port belongs to B's backend: \(seen)")

        // `sagedev env --format json` is what the services got; without --show-secrets no password shows.
        let backend = try #require(b.serviceEnvironment("backend"))
        for key in ["DATABASE_URL", "VALKEY_URL", "REDIS_URL"] { #expect(bValues[key] == backend[key], "\(key)") }
        #expect(bValues["BACKEND_PORT"] == backend["PORT"])
        let redacted = try b.sagedev(["env", "--format", "json"], timeout: 30)
        #expect(redacted.status == .exited(0))
        #expect(!redacted.stdoutText.contains(b.postgresPassword) && !redacted.stdoutText.contains(b.valkeyPassword)
                && !redacted.stdoutText.contains(percentEncoded(b.postgresPassword)), "\(redacted.stdoutText)")
        #expect(redacted.stdoutText.contains("****"))

        // `sagedev instances` lists the three, with their branches and live daemons.
        let list = try instances(a)
        for (p, name) in [(a, "a"), (b, "b"), (c, "c")] {
            let e = entry(list, p)
            #expect(e["state"] as? String == "running" && e["branch"] as? String == name, "\(e)")
            #expect((e["daemonPid"] as? Int).map { ProcFS.isAlive(pid: Int32($0), startTime: nil) } == true)
        }

        // `down` in B leaves A's and C's services running (the same processes) and healthy; B, brought up again
        // while its slot is free, keeps it. (Healthy within a deadline: one status read right after B's down found
        // A and C not all healthy once, in a loaded full run; alone the test passed.)
        let services = ["postgres", "valkey", "backend", "frontend"]
        let before = [a, c].map { p in services.map { p.pidRecord($0)?.pid } }
        #expect(try b.sagedev(["down"]).status == .exited(0))
        for (i, p) in [a, c].enumerated() {
            #expect(services.map { p.pidRecord($0)?.pid } == before[i], "\(p.root): its services were restarted when B went down")
            #expect(waitUntil(.after(seconds: 30)) { p.allServicesHealthy }, "\(p.root) went down with B")
        }
        #expect(entry(try instances(a), b)["state"] as? String == "stopped")
        let again = try b.sagedev(["up"])
        #expect(again.status == .exited(0), "\(again.stderrText)")
        #expect(slot(try b.connectionValues()) == slot(bValues))

        // The next new checkout reuses the slot B frees.
        #expect(try b.sagedev(["down"]).status == .exited(0))
        let d = try repo.checkout("d")
        let upD = try d.sagedev(["up"])
        #expect(upD.status == .exited(0), "\(upD.stderrText)")
        if slot(bValues) != 0 { #expect(upD.stderrText.contains("port slot \(slot(bValues))"), "\(upD.stderrText)") }
        #expect(slot(try d.connectionValues()) == slot(bValues))
        #expect(d.allServicesHealthy)
    }

    @Test func twoUpsStartedAtTheSameMomentGetDifferentSlots() throws {
        let repo = try ExampleRepository()
        let e = try repo.checkout("e"), f = try repo.checkout("f")
        // Valkey alone keeps this lean: the claim covers every port of the checkout all the same.
        let ups = simultaneously([e, f].map { p in { @Sendable in try p.sagedev(["up", "valkey", "--no-watch"]) } })
        for r in ups { let done = try r.get(); #expect(done.status == .exited(0), "\(done.stderrText)") }
        let slots = try [e, f].map { slot(try $0.connectionValues()) }
        #expect(Set(slots) == [0, 1], "\(slots)")
        let ports = try [e, f].map { Int(try $0.connectionValues()["VALKEY_PORT"] ?? "") ?? 0 }
        #expect(ports[0] != ports[1])
        for (p, port) in zip([e, f], ports) {
            let owner = ProcFS.listeners(port: port).compactMap(\.pid).first.flatMap { ProcFS.sessionID(pid: $0) }
            #expect(owner != nil && owner == p.pidRecord("valkey")?.pid, "each checkout's valkey listens on its own port")
        }
    }

    @Test func aPortHeldByAStrangerIsAnErrorNamingItNotAShift() throws {
        let repo = try ExampleRepository()
        let g = try repo.checkout("g")
        let stranger = try Listener.tcp(host: "127.0.0.1", port: repo.ports.backend)
        defer { stranger.close() }
        let t0 = monotonicNanoseconds()
        let r = try g.sagedev(["up"], timeout: 60)
        #expect(r.status == .exited(1), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(millisecondsSince(t0) < 10_000)
        #expect(r.stderrText.contains("port \(repo.ports.backend)") && r.stderrText.contains("(pid \(getpid()))"), "\(r.stderrText)")
        #expect(r.stderrText.contains("BACKEND_PORT") && r.stderrText.contains("not a sagedev instance"), "\(r.stderrText)")
        #expect(!r.stderrText.contains("port slot"), "no shift around a stranger")
        #expect(DaemonLaunched.none(g), "nothing was started")
        #expect(entry(try instances(g), g).isEmpty)
    }

    @Test func aKilledInstanceLeavesItsSlotToTheNextUp() throws {
        let repo = try ExampleRepository()
        let x = try repo.checkout("x"), y = try repo.checkout("y"), z = try repo.checkout("z")
        #expect(try x.sagedev(["up", "valkey", "--no-watch"]).status == .exited(0))
        let xSlot = slot(try x.connectionValues())
        #expect(try y.sagedev(["up", "valkey", "--no-watch"]).status == .exited(0))
        // kill -9 of x's daemon and its services.
        let daemon = try #require(entry(try instances(x), x)["daemonPid"] as? Int)
        let valkey = try #require(x.pidRecord("valkey")).pid
        kill(Int32(daemon), SIGKILL)
        kill(-valkey, SIGKILL)
        let xPort = Int(try x.connectionValues()["VALKEY_PORT"] ?? "") ?? 0
        #expect(waitUntil(.after(seconds: 10)) { !ProcFS.isAlive(pid: Int32(daemon), startTime: nil) && ProcFS.listeners(port: xPort).isEmpty })
        #expect(entry(try instances(x), x)["state"] as? String == "stopped")
        // The next `up` elsewhere takes the reclaimed slot.
        let up = try z.sagedev(["up", "valkey", "--no-watch"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        #expect(slot(try z.connectionValues()) == xSlot)
        #expect(entry(try instances(y), y)["state"] as? String == "running")
    }

    @Test func twoComposeCheckoutsGetTheirOwnProjectsContainersAndVolumes() throws {
        let engine = try DockerEngine.shared()
        var env = ComposeStackTests.images
        env["SAGEDEV_PROJECT"] = "sgi" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        env["API_URL"] = "http://127.0.0.1:${BACKEND_PORT}"
        let repo = try ExampleRepository(runtime: "compose", extraEnv: env, processEnvironment: ["DOCKER_HOST": engine.host])
        let h = try repo.checkout("h"), k = try repo.checkout("k")
        let ups = simultaneously([h, k].map { p in { @Sendable in try p.sagedev(["up", "--no-watch"], timeout: 300) } })
        for r in ups { let done = try r.get(); #expect(done.status == .exited(0), "\(done.stdoutText)\n\(done.stderrText)") }
        let names = try [h, k].map { try $0.connectionValues()["SAGEDEV_PROJECT"] ?? "" }
        #expect(Set(names).count == 2 && names.allSatisfy { $0.hasPrefix(env["SAGEDEV_PROJECT"]!) }, "\(names)")
        let containers = try names.map { Set(try ComposeStackTests.containers(engine, $0)) }
        let volumes = try names.map { Set(try ComposeStackTests.volumes(engine, $0)) }
        #expect(containers.allSatisfy { $0.count == 4 }, "\(containers)")
        #expect(containers[0].isDisjoint(with: containers[1]))
        #expect(volumes.allSatisfy { !$0.isEmpty } && volumes[0].isDisjoint(with: volumes[1]), "\(volumes)")
        let values = try [h, k].map { try $0.connectionValues() }
        #expect(Set(values.flatMap(ports)).count == 8)
        for v in values { #expect(try psql(url: v["DATABASE_URL"]!, "SELECT 1") == "1") }
        for p in [h, k] { #expect(p.allServicesHealthy) }
        // Compose reads .env itself: what .env derives from a port follows each checkout's slot there too.
        for (name, v) in zip(names, values) {
            let inspect = try ComposeStackTests.docker(engine, ["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", "\(name)-frontend-1"])
            #expect(inspect.stdoutText.contains("API_URL=http://127.0.0.1:\(v["BACKEND_PORT"]!)\n"), "\(name): \(inspect.stdoutText) \(inspect.stderrText)")
        }
    }
}

/// Whether a project's daemon was started (its lock is held).
enum DaemonLaunched {
    static func none(_ p: TestProject) -> Bool {
        let lock = p.root + "/.sagedev/run/daemon.lock"
        return !FileDescriptor.exists(lock) || FileLock.holderPid(path: lock) == nil
    }
}

private func percentEncoded(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s
}
