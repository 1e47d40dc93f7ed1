import Testing
import Glibc
@testable import SageSystem

private func sleeper(_ argv: [String] = ["sleep", "30"], executable: String? = nil, newSession: Bool = true) throws -> ChildProcess {
    let exe = executable ?? ProcessEnvironment.which(argv[0])!
    return try Spawner.spawn(SpawnSpec(executable: exe, arguments: argv, environment: ProcessEnvironment.current(),
                                       newSession: newSession, stdin: .null, stdout: .null, stderr: .null))
}

/// Re-checks `condition` until it holds or the deadline passes; between checks it blocks on the child's pidfd,
/// so a child that dies ends the wait at once.
private func waitFor(_ child: ChildProcess, until deadline: Deadline, _ condition: () -> Bool) -> Bool {
    while true {
        if condition() { return true }
        if deadline.hasPassed { return false }
        if child.wait(deadline: .after(milliseconds: 10).earlier(deadline)) != nil { return condition() }
    }
}

private func makeTempDir() -> String {
    var template = Array("/tmp/sagedev-procfs-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

@Suite struct ProcFSTests {
    @Test func parsesStatWithSpacesAndParensInTheName() throws {
        let text = "4242 (we) ird (na)me) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 987654 1000000 200 18446744073709551615\n"
        let s = try #require(ProcFS.parseStat(text))
        #expect(s.pid == 4242)
        #expect(s.comm == "we) ird (na)me")
        #expect(s.state == "S")
        #expect(s.parentPid == 1)
        #expect(s.processGroup == 4242)
        #expect(s.sessionID == 4242)
        #expect(s.userTicks == 7 && s.systemTicks == 3)
        #expect(s.startTime == 987654)
        #expect(ProcFS.parseStat("4242 (truncated) S 1 2") == nil)
        #expect(ProcFS.parseStat("") == nil)
        #expect(ProcFS.parseStat("x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20") == nil)
    }

    @Test func startTimesOfSelfAndChild() throws {
        let me = try #require(ProcFS.startTime(pid: getpid()))
        let child = try sleeper(newSession: false)
        defer { child.terminate(.standard(graceMilliseconds: 2000)) }
        let theirs = try #require(ProcFS.startTime(pid: child.pid))
        #expect(theirs >= me)
        #expect(ProcFS.parentPid(pid: child.pid) == getpid())
        #expect(ProcFS.processGroup(pid: child.pid) == getpgrp())
        #expect(ProcFS.state(pid: child.pid).map { "RSD".contains($0) } == true)
        #expect(ProcFS.isAlive(pid: child.pid, startTime: theirs))
        // posix_spawn returns once the child has left our memory, which is before exec has set up its argv.
        #expect(waitFor(child, until: .after(seconds: 10)) { ProcFS.commandLine(pid: child.pid) == ["sleep", "30"] })
        #expect(ProcFS.comm(pid: child.pid) == "sleep")
        #expect(ProcFS.startTime(pid: 0) == nil)
        #expect(ProcFS.startTime(pid: Int32.max) == nil)
    }

    @Test func reusedPidWithAnotherStartTimeIsNotAlive() throws {
        let child = try sleeper()
        let start = try #require(ProcFS.startTime(pid: child.pid))
        #expect(ProcFS.isAlive(pid: child.pid, startTime: start))
        #expect(ProcFS.isAlive(pid: child.pid, startTime: nil))
        // A pid file recorded for a different process that once had this pid.
        #expect(!ProcFS.isAlive(pid: child.pid, startTime: start &+ 1))
        #expect(!ProcFS.isAlive(pid: child.pid, startTime: start &- 1))
        let me = try #require(ProcFS.startTime(pid: getpid()))
        #expect(ProcFS.isAlive(pid: getpid(), startTime: me))
        #expect(!ProcFS.isAlive(pid: getpid(), startTime: me &+ 100))
        #expect(child.terminate(.standard(graceMilliseconds: 2000)) != nil)
        #expect(!ProcFS.isAlive(pid: child.pid, startTime: start))
    }

    @Test func zombieIsNotAlive() throws {
        let child = try sleeper(["true"], newSession: false)
        let start = ProcFS.startTime(pid: child.pid)
        // The pidfd turns readable at exit, before anyone reaps: the child is a zombie then.
        var p = pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 10_000) == 1)
        #expect(ProcFS.state(pid: child.pid) == "Z")
        #expect(!ProcFS.isAlive(pid: child.pid, startTime: start))
        #expect(!ProcFS.isAlive(pid: child.pid, startTime: nil))
        #expect(child.tryWait() == .exited(0))
        #expect(ProcFS.state(pid: child.pid) == nil)
    }

    @Test func commandNameWithSpacesAndParens() throws {
        let dir = makeTempDir()
        let link = dir + "/we) ird (n"
        defer { unlink(link); rmdir(dir) }
        #expect(symlink(ProcessEnvironment.which("sleep")!, link) == 0)
        let child = try sleeper(["we) ird (n", "30"], executable: link)
        defer { child.terminate(.standard(graceMilliseconds: 2000)) }
        #expect(waitFor(child, until: .after(seconds: 10)) { ProcFS.commandLine(pid: child.pid)?.isEmpty == false })
        let s = try #require(ProcFS.stat(pid: child.pid))
        #expect(s.comm == "we) ird (n")
        #expect(s.pid == child.pid)
        #expect(s.parentPid == getpid())
        #expect(s.processGroup == child.pid && s.sessionID == child.pid)
        #expect(ProcFS.comm(pid: child.pid) == "we) ird (n")
        #expect(ProcFS.commandName(pid: child.pid) == "we) ird (n")
    }

    @Test func processesInGroupFindsEveryMember() throws {
        let child = try sleeper(["sh", "-c", "sleep 30 & sleep 30 & wait"])
        defer { child.terminate(.standard(graceMilliseconds: 2000)) }
        #expect(waitFor(child, until: .after(seconds: 10)) { ProcFS.processes(inGroup: child.pid).count == 3 })
        let members = ProcFS.processes(inGroup: child.pid)
        #expect(members.contains(child.pid))
        #expect(ProcFS.processes(inSession: child.pid) == members)
        for pid in members where pid != child.pid {
            #expect(ProcFS.parentPid(pid: pid) == child.pid)
            #expect(ProcFS.commandLine(pid: pid) == ["sleep", "30"])
            #expect(ProcFS.sessionID(pid: pid) == child.pid)
        }
        #expect(!ProcFS.processes(inGroup: getpgrp()).contains(child.pid))
        #expect(ProcFS.allPids().contains(getpid()))
        #expect(ProcFS.allPids().contains(child.pid))
        #expect(child.terminate(.standard(graceMilliseconds: 2000)) != nil)
        // The orphaned sleeps die with the group; dead or zombie, none counts as a member.
        #expect(waitFor(child, until: .after(seconds: 10)) { ProcFS.processes(inGroup: child.pid).isEmpty })
        #expect(ProcFS.processes(inGroup: 0).isEmpty)
    }

    @Test func resourceUse() throws {
        let rss = try #require(ProcFS.residentSetBytes(pid: getpid()))
        #expect(rss > 1 << 20)
        #expect(rss % 1024 == 0)
        let ticks = try #require(ProcFS.cpuTicks(pid: getpid()))
        #expect(ticks.user + ticks.system < 1_000_000_000)
        #expect(ProcFS.clockTicksPerSecond == sysconf(Int32(_SC_CLK_TCK)))
        #expect(ProcFS.clockTicksPerSecond > 0)
        #expect(ProcFS.residentSetBytes(pid: Int32.max) == nil)
        #expect(ProcFS.cpuTicks(pid: Int32.max) == nil)
    }

    @Test func decodesKernelAddresses() {
        #expect(ProcFS.decodeAddress("0100007F") == "127.0.0.1")
        #expect(ProcFS.decodeAddress("00000000") == "0.0.0.0")
        #expect(ProcFS.decodeAddress("0101A8C0") == "192.168.1.1")
        #expect(ProcFS.decodeAddress("00000000000000000000000001000000") == "::1")
        #expect(ProcFS.decodeAddress("00000000000000000000000000000000") == "::")
        #expect(ProcFS.decodeAddress("0000000000000000FFFF00000100007F") == "::ffff:127.0.0.1")
        #expect(ProcFS.decodeAddress("B80D0120000000000000000001000000") == "2001:db8::1")
        #expect(ProcFS.decodeAddress("0100007") == nil)
        #expect(ProcFS.decodeAddress("ZZ00007F") == nil)
    }

    @Test func parsesListenEntriesOnly() {
        let text = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 31337 1 0000000000000000 100 0 0 10 0
               1: 0100007F:1538 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   999        0 31338 1 0000000000000000 20 4 30 10 -1
               2: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
               3: garbage
            """
        let sockets = ProcFS.parseListeningSockets(text)
        #expect(sockets == [ProcFS.ListeningSocket(localAddress: "127.0.0.1", port: 5432, inode: 31337),
                            ProcFS.ListeningSocket(localAddress: "0.0.0.0", port: 6379, inode: 4242)])
        let v6 = """
              sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
            """
        #expect(ProcFS.parseListeningSockets(v6) == [ProcFS.ListeningSocket(localAddress: "::1", port: 3000, inode: 777)])
    }

    @Test func listenersNamesThisProcessForIPv4AndIPv6() throws {
        let v4 = try Listener.tcp(port: 0)
        // A process another test is spawning may hold a copy of the fd for a moment before exec, so
        // other owners can appear; ours must be there.
        let owners4 = ProcFS.listeners(port: v4.port)
        #expect(owners4.contains(ProcFS.PortOwner(pid: getpid(), command: ProcFS.commandName(pid: getpid()), localAddress: "127.0.0.1", port: v4.port)))
        let v6 = try Listener.tcp(host: "::1", port: 0)
        let owners6 = ProcFS.listeners(port: v6.port)
        #expect(owners6.contains(ProcFS.PortOwner(pid: getpid(), command: ProcFS.commandName(pid: getpid()), localAddress: "::1", port: v6.port)))
        v4.close()
        // Gone once every copy of the fd is closed (a copy held by a child mid-spawn lasts only until its exec).
        let deadline = Deadline.after(seconds: 5)
        while !ProcFS.listeners(port: v4.port).isEmpty && !deadline.hasPassed {}
        #expect(ProcFS.listeners(port: v4.port).isEmpty)
    }
}

@Suite struct ProcessGroupListenerTests {
    @Test func aGroupsListeningSocketsComeFromItsFdsAndNetTables() throws {
        let listener = try Listener.tcp(host: "::1", port: 0)
        defer { listener.close() }
        let found = ProcFS.listeningSockets(ofProcesses: [getpid()])
        #expect(found.contains { $0.localAddress == "::1" && $0.port == listener.port })
        // A process with no sockets listens on nothing.
        #expect(ProcFS.listeningSockets(ofProcesses: [1_999_999_999]).isEmpty)
    }
}
