import Testing
import Glibc
@testable import SageSystem

private let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/SageSystemTests/PortCheckTests.swift
    return parts.joined(separator: "/")
}()

/// A port the OS just handed out and that is listened on no more. Tests run in parallel and spawn children,
/// and a child mid-spawn holds copies of our fds until its exec, so wait (bounded) for the last copy to close.
private func freePort() throws -> Int {
    let l = try Listener.tcp(port: 0)
    let port = l.port
    l.close()
    let deadline = Deadline.after(seconds: 5)
    while !ProcFS.listeners(port: port).isEmpty && !deadline.hasPassed {}
    return port
}

private func makeTempDir() -> String {
    var template = Array("/tmp/sagedev-portcheck-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

/// Checks the port until `child` shows up as its owner; between checks it blocks on the child's pidfd,
/// so a child that fails to start ends the wait at once.
private func waitForOwner(_ child: ChildProcess, host: String, port: Int, deadline: Deadline) -> PortConflict? {
    while true {
        if let c = PortCheck.check(host: host, port: port), c.owners.contains(where: { $0.pid == child.pid }) { return c }
        if deadline.hasPassed { return nil }
        if child.wait(deadline: .after(milliseconds: 20).earlier(deadline)) != nil { return nil }
    }
}

@Suite struct PortCheckTests {
    @Test func namesThisProcessAsOwner() throws {
        let l = try Listener.tcp(port: 0)
        let conflict = try #require(PortCheck.check(host: "127.0.0.1", port: l.port))
        #expect(conflict.port == l.port)
        #expect(conflict.host == "127.0.0.1")
        let me = ProcFS.commandName(pid: getpid())
        // A process another test is spawning may hold a copy of the fd for a moment before exec; ours must be named.
        #expect(conflict.owners.contains(ProcFS.PortOwner(pid: getpid(), command: me, localAddress: "127.0.0.1", port: l.port)))
        #expect(conflict.description.hasPrefix("port \(l.port) on 127.0.0.1 is in use by "))
        #expect(conflict.description.contains("\(me!) (pid \(getpid()))"))
        // Wildcards overlap the loopback listener; "localhost" means 127.0.0.1.
        #expect(PortCheck.check(host: "0.0.0.0", port: l.port)?.owners.contains { $0.pid == getpid() } == true)
        #expect(PortCheck.check(host: "localhost", port: l.port)?.owners.contains { $0.pid == getpid() } == true)
        #expect(PortCheck.check(host: "::", port: l.port)?.owners.contains { $0.pid == getpid() } == true)
    }

    @Test func aListenerOnIPv6LoopbackIsAConflictFor127001() throws {
        // A dev server on [::1]:PORT catches the browser's localhost:PORT: checking 127.0.0.1 must see it.
        let l = try Listener.tcp(host: "::1", port: 0)
        let conflict = try #require(PortCheck.check(host: "127.0.0.1", port: l.port))
        #expect(conflict.host == "::1")
        #expect(conflict.owners.contains { $0.pid == getpid() })
        #expect(conflict.description.hasPrefix("port \(l.port) on ::1 is in use by "))
    }

    @Test func freePortHasNoConflict() throws {
        let port = try freePort()
        #expect(PortCheck.check(host: "127.0.0.1", port: port) == nil)
        #expect(PortCheck.check(host: "0.0.0.0", port: port) == nil)
        #expect(PortCheck.firstConflict([(host: "127.0.0.1", port: port)]) == nil)
    }

    @Test func checkLeavesThePortFree() throws {
        let port = try freePort()
        #expect(PortCheck.check(host: "127.0.0.1", port: port) == nil)
        // The probe bind was closed at once: we can listen right after.
        let l = try Listener.tcp(port: port)
        #expect(l.port == port)
    }

    @Test func namesAChildValkeyAndItsCommand() throws {
        let valkey = repoRoot + "/.sagedev/toolchain/bin/valkey-server"
        try #require(FileDescriptor.isExecutable(valkey), "valkey-server missing: run scripts/bootstrap.sh")
        let dir = makeTempDir()
        defer { rmdir(dir) }
        let port = try freePort()
        let child = try Spawner.spawn(SpawnSpec(
            executable: valkey,
            arguments: ["valkey-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
            environment: ProcessEnvironment.current(), workingDirectory: dir, stdout: .null, stderr: .null))
        defer { child.terminate(.standard(graceMilliseconds: 3000)) }
        let conflict = try #require(waitForOwner(child, host: "127.0.0.1", port: port, deadline: .after(seconds: 15)))
        let owner = try #require(conflict.owners.first(where: { $0.pid == child.pid }))
        #expect(owner.command == "valkey-server")
        #expect(owner.localAddress == "127.0.0.1")
        #expect(owner.port == port)
        #expect(conflict.description == "port \(port) on 127.0.0.1 is in use by valkey-server (pid \(child.pid))")
        #expect(PortCheck.firstConflict([(host: "127.0.0.1", port: try freePort()), (host: "0.0.0.0", port: port)])?.port == port)
    }

    @Test func namesAChildPythonHTTPServer() throws {
        try #require(ProcessEnvironment.which("python3") != nil, "python3 is needed for this test")
        let port = try freePort()
        let child = try Spawner.spawn(SpawnSpec(
            executable: ProcessEnvironment.which("python3")!,
            arguments: ["python3", "-m", "http.server", "--bind", "127.0.0.1", String(port)],
            environment: ProcessEnvironment.current(), workingDirectory: "/", stdout: .null, stderr: .null))
        defer { child.terminate(.standard(graceMilliseconds: 3000)) }
        let conflict = try #require(waitForOwner(child, host: "127.0.0.1", port: port, deadline: .after(seconds: 20)))
        let owner = try #require(conflict.owners.first(where: { $0.pid == child.pid }))
        #expect(owner.command?.hasPrefix("python3") == true)
        #expect(conflict.description.contains("(pid \(child.pid))"))
    }

    @Test func ipv6LoopbackListener() throws {
        let l = try Listener.tcp(host: "::1", port: 0)
        let conflict = try #require(PortCheck.check(host: "::1", port: l.port))
        #expect(Set(conflict.owners.map(\.localAddress)) == ["::1"])
        #expect(conflict.owners.contains { $0.pid == getpid() })
        #expect(PortCheck.check(host: "[::1]", port: l.port) != nil)
        #expect(PortCheck.check(host: "0:0::1", port: l.port) != nil)
        // The loopbacks of both families count for each other (a browser's localhost may reach either); a
        // wildcard overlaps it too.
        #expect(PortCheck.check(host: "127.0.0.1", port: l.port)?.host == "::1")
        #expect(PortCheck.check(host: "0.0.0.0", port: l.port)?.owners.first?.localAddress == "::1")
    }

    @Test func overlapRules() {
        #expect(PortCheck.overlaps("0.0.0.0", "127.0.0.1"))
        #expect(PortCheck.overlaps("::", "127.0.0.1"))
        #expect(PortCheck.overlaps("10.0.0.5", "0.0.0.0"))
        #expect(PortCheck.overlaps("::ffff:127.0.0.1", "127.0.0.1"))
        #expect(PortCheck.overlaps("localhost", "127.0.0.1"))
        #expect(!PortCheck.overlaps("127.0.0.1", "::1"))
        #expect(!PortCheck.overlaps("127.0.0.1", "127.0.0.2"))
    }

    @Test func descriptionWithUnknownOrSeveralOwners() {
        let unknown = PortConflict(port: 5432, host: "127.0.0.1",
                                   owners: [ProcFS.PortOwner(pid: nil, command: nil, localAddress: "0.0.0.0", port: 5432)])
        #expect(unknown.description == "port 5432 on 127.0.0.1 is in use by another process (pid unknown: run as root or check with ss -ltnp)")
        #expect(PortConflict(port: 1, host: "h", owners: []).description.hasSuffix("another process (pid unknown: run as root or check with ss -ltnp)"))
        let several = PortConflict(port: 80, host: "0.0.0.0", owners: [
            ProcFS.PortOwner(pid: 812, command: "nginx", localAddress: "0.0.0.0", port: 80),
            ProcFS.PortOwner(pid: 812, command: "nginx", localAddress: "::", port: 80),
            ProcFS.PortOwner(pid: 813, command: "nginx", localAddress: "0.0.0.0", port: 80)])
        #expect(several.description == "port 80 on 0.0.0.0 is in use by nginx (pid 812), nginx (pid 813)")
    }
}
