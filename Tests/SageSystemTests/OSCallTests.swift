import Testing
import Glibc
import Dispatch
@testable import SageSystem

private func makeTempDir() -> String {
    var template = Array("/tmp/sagedev-oscalls-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

private func removeTree(_ dir: String) {
    _ = try? Subprocess.run(["rm", "-rf", dir], deadline: .after(seconds: 10))
}

@Suite struct FileOperationTests {
    @Test func readFileFromAnOffsetReturnsAtMostTheMaximum() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        try FileDescriptor.writeFileAtomically(dir + "/f", Array("0123456789".utf8))
        #expect(FileDescriptor.readFile(dir + "/f", offset: 3, maximum: 4) == Array("3456".utf8))
        #expect(FileDescriptor.readFile(dir + "/f", offset: 8, maximum: 100) == Array("89".utf8))
        #expect(FileDescriptor.readFile(dir + "/f", offset: 20, maximum: 5) == [])
        #expect(FileDescriptor.readFile(dir + "/missing", offset: 0, maximum: 5) == nil)
    }

    @Test func openForAppendingCreatesWithTheModeAndAppends() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let path = dir + "/log"
        for text in ["a\n", "b\n"] {
            let fd = try #require(FileDescriptor.openForAppending(path, mode: 0o640))
            FileDescriptor.writeAll(fd, text)
            #expect(FileDescriptor.info(fd: fd)?.size == (text == "a\n" ? 2 : 4))
            FileDescriptor.close(fd)
        }
        #expect(FileDescriptor.readText(path) == "a\nb\n")
        #expect(FileDescriptor.info(path)?.permissions == 0o640)
        #expect(FileDescriptor.openForAppending(dir + "/no/such/dir/log") == nil)
    }

    @Test func renameRemoveAndTruncate() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        try FileDescriptor.writeFileAtomically(dir + "/a", Array("abc".utf8))
        #expect(FileDescriptor.rename(dir + "/a", to: dir + "/b"))
        #expect(!FileDescriptor.exists(dir + "/a"))
        #expect(!FileDescriptor.rename(dir + "/a", to: dir + "/c"))
        #expect(FileDescriptor.truncate(dir + "/b", to: 1))
        #expect(FileDescriptor.readText(dir + "/b") == "a")
        #expect(FileDescriptor.remove(dir + "/b"))
        #expect(!FileDescriptor.remove(dir + "/b"))
    }

    @Test func moveThrowsNamingBothPaths() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        #expect { try FileDescriptor.move(dir + "/x", to: dir + "/y") } throws: { error in
            guard let e = error as? SystemError else { return false }
            return e.code == .notFound && e.message.contains(dir + "/x") && e.message.contains(dir + "/y")
                && SystemError.describe(errno: e.errno) == "No such file or directory"
        }
    }

    @Test func infoReportsSizeOwnerKindAndModificationTime() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let before = wallClockSeconds()
        try FileDescriptor.writeFileAtomically(dir + "/f", Array("12345".utf8), mode: 0o600)
        let f = try #require(FileDescriptor.info(dir + "/f"))
        #expect(f.size == 5 && f.permissions == 0o600 && !f.isDirectory)
        #expect(f.uid == ProcessIdentity.effectiveUserID)
        #expect(f.modified >= before - 1 && f.modified <= wallClockSeconds() + 1)
        #expect(FileDescriptor.info(dir)?.isDirectory == true)
        #expect(FileDescriptor.info(dir + "/missing") == nil)
    }

    @Test func changeOwnerToOurselvesSucceedsAndFailsOnAMissingPath() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        #expect(FileDescriptor.changeOwner(dir, uid: ProcessIdentity.userID, gid: ProcessIdentity.groupID))
        #expect(!FileDescriptor.changeOwner(dir + "/missing", uid: ProcessIdentity.userID, gid: ProcessIdentity.groupID))
    }

    @Test func availableBytesIsPositiveForAnExistingPath() {
        #expect((FileDescriptor.availableBytes(onFileSystemOf: "/tmp") ?? 0) > 0)
        #expect(FileDescriptor.availableBytes(onFileSystemOf: "/no/such/path") == nil)
    }

    @Test func subdirectoryNamesListsDirectoriesOnlyAndNoSymlinks() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        try FileDescriptor.makeDirectories(dir + "/one")
        try FileDescriptor.makeDirectories(dir + "/two/nested")
        try FileDescriptor.writeFileAtomically(dir + "/file", [])
        #expect(symlink(dir + "/one", dir + "/link") == 0)
        #expect(DirectoryScan.subdirectoryNames(of: dir)?.sorted() == ["one", "two"])
        #expect(DirectoryScan.subdirectoryNames(of: dir + "/missing") == nil)
    }

    @Test func duplicateGivesASecondFdForTheSameFile() throws {
        let dir = makeTempDir(); defer { removeTree(dir) }
        let fd = try #require(FileDescriptor.openForAppending(dir + "/f"))
        let copy = FileDescriptor.duplicate(fd)
        #expect(copy >= 0 && copy != fd)
        FileDescriptor.close(fd)
        FileDescriptor.writeAll(copy, "via copy")
        FileDescriptor.close(copy)
        #expect(FileDescriptor.readText(dir + "/f") == "via copy")
    }

    @Test func readAvailableOnAPipe() throws {
        let p = try FileDescriptor.pipe()
        defer { FileDescriptor.close(p.read); FileDescriptor.close(p.write) }
        FileDescriptor.setNonBlocking(p.read)
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(try FileDescriptor.readAvailable(p.read, into: &buf) == nil)
        #expect(!FileDescriptor.waitReadable(p.read, deadline: .after(milliseconds: 10)))
        FileDescriptor.writeAll(p.write, "hi")
        #expect(FileDescriptor.waitReadable(p.read, deadline: .after(seconds: 5)))
        #expect(try FileDescriptor.readAvailable(p.read, into: &buf) == 2)
        #expect(Array(buf[0..<2]) == Array("hi".utf8))
    }
}

@Suite struct ProcessIdentityTests {
    @Test func identityMatchesTheProcess() {
        #expect(ProcessIdentity.pid == getpid())
        #expect(ProcessIdentity.userID == getuid() && ProcessIdentity.effectiveUserID == geteuid())
        #expect(ProcessIdentity.groupID == getgid())
    }

    @Test func workingDirectoryIsAnExistingAbsoluteDirectory() throws {
        let cwd = try #require(ProcessIdentity.workingDirectory())
        #expect(cwd.hasPrefix("/"))
        #expect(FileDescriptor.isDirectory(cwd))
    }

    @Test func aPipeIsNotATerminal() throws {
        let p = try FileDescriptor.pipe()
        defer { FileDescriptor.close(p.read); FileDescriptor.close(p.write) }
        #expect(!ProcessIdentity.isTerminal(p.read))
    }

    @Test func userAccountsComeFromThePasswdDatabase() {
        let root = UserAccount.named("root")
        #expect(root?.uid == 0 && root?.gid == 0 && root?.name == "root")
        #expect(UserAccount.named("sagedev-no-such-user") == nil)
    }

    @Test func cpuSecondsGrowWithWork() {
        let before = ResourceUsage.cpuSeconds()
        var x: UInt64 = 1
        let start = monotonicNanoseconds()
        while millisecondsSince(start) < 50 { x = x &* 6364136223846793005 &+ 1 }
        #expect(x != 0)
        #expect(ResourceUsage.cpuSeconds() > before)
        #expect(ResourceUsage.cpuSeconds(children: true) >= 0)
    }
}

@Suite struct SignalTests {
    /// A group of two idle processes: the leader (sh exec'ed into tail) and a background tail.
    private func spawnIdleGroup() throws -> ChildProcess {
        let child = try Spawner.spawn(SpawnSpec(executable: "/bin/sh", arguments: ["/bin/sh", "-c", "tail -f /dev/null & exec tail -f /dev/null"],
                                                environment: ["PATH": "/usr/bin:/bin"], newSession: true))
        let deadline = Deadline.after(seconds: 10)
        while !(ProcFS.processes(inGroup: child.pid).count == 2 && ProcFS.comm(pid: child.pid) == "tail") && !deadline.hasPassed {
            _ = FileDescriptor.waitReadable(-1, deadline: .after(milliseconds: 2))
        }
        #expect(ProcFS.processes(inGroup: child.pid).count == 2, "the group did not form")
        return child
    }

    @Test func sendToGroupEndsEveryMember() throws {
        let child = try spawnIdleGroup()
        #expect(Signals.send(Signals.kill, toGroup: child.pid))
        #expect(child.wait(deadline: .after(seconds: 10)) == .signalled(SIGKILL))
        #expect(ProcFS.waitForGroupToEnd(child.pid, deadline: .after(seconds: 10)))
    }

    @Test func sendToProcessReachesOnlyThatProcess() throws {
        let child = try spawnIdleGroup()
        defer { Signals.send(Signals.kill, toGroup: child.pid); _ = child.wait(deadline: .after(seconds: 10)) }
        #expect(Signals.send(Signals.terminate, toProcess: child.pid))
        #expect(child.wait(deadline: .after(seconds: 10)) == .signalled(SIGTERM))
        // The background member is still there.
        #expect(!ProcFS.processesHoldingResources(inGroup: child.pid).isEmpty)
        #expect(!ProcFS.waitForGroupToEnd(child.pid, deadline: .after(milliseconds: 20)))
    }

    @Test func sendingToAGonePidFails() throws {
        let child = try Spawner.spawn(SpawnSpec(executable: "/bin/true", environment: [:]))
        _ = child.wait(deadline: .after(seconds: 10))
        #expect(!Signals.send(Signals.terminate, toProcess: child.pid))
    }

    @Test func pidsThatKillWouldReadAsGroupsAreRefused() {
        // kill(0, sig) would signal our own group and kill(-1, sig) every process we may signal.
        #expect(!Signals.send(0, toProcess: 0))
        #expect(!Signals.send(0, toProcess: -1))
        #expect(!Signals.send(0, toGroup: 0))
        #expect(!Signals.send(0, toGroup: -1))
        #expect(Signals.send(0, toProcess: ProcessIdentity.pid))
    }

    @Test func pidfdWaitForExitAndReap() throws {
        let child = try Spawner.spawn(SpawnSpec(executable: "/bin/sh", arguments: ["/bin/sh", "-c", "exit 0"], environment: [:]))
        #expect(Pidfd.waitForExit(child.pidfd, deadline: .after(seconds: 10)))
        Pidfd.reapIfExited(child.pid)
        #expect(ProcFS.stat(pid: child.pid) == nil)
    }
}
