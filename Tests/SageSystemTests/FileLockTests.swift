import Testing
import Glibc
import Dispatch
@testable import SageSystem

private func makeTempDir() -> String {
    var template = Array("/tmp/sagedev-filelock-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

/// Another process trying the lock without waiting: exit 0 when it got it, 1 when it is held.
private func otherProcessCanLock(_ path: String) throws -> Bool {
    let r = try Subprocess.run(["flock", "-n", "-E", "1", path, "true"], deadline: .after(seconds: 10))
    #expect(r.status == .exited(0) || r.status == .exited(1), "flock: \(r.status) \(r.stderrText)")
    return r.status == .exited(0)
}

@Suite struct FileLockTests {
    @Test func excludesOtherProcessesUntilReleased() throws {
        let dir = makeTempDir()
        let path = dir + "/daemon.lock"
        defer { unlink(path); rmdir(dir) }
        let lock = try #require(try FileLock.tryAcquire(path: path))
        #expect(lock.isHeld)
        #expect(try !otherProcessCanLock(path))
        // A second holder in this process is refused too (flock is per open file).
        #expect(try FileLock.tryAcquire(path: path) == nil)
        lock.release()
        #expect(!lock.isHeld)
        lock.release()  // twice is harmless
        #expect(try otherProcessCanLock(path))
        let again = try #require(try FileLock.tryAcquire(path: path))
        #expect(try !otherProcessCanLock(path))
        again.release()
    }

    @Test func ownerPidIsRecordedAndReported() throws {
        let dir = makeTempDir()
        let path = dir + "/daemon.lock"
        defer { unlink(path); rmdir(dir) }
        #expect(FileLock.holderPid(path: path) == nil)  // no file
        let lock = try #require(try FileLock.tryAcquire(path: path))
        #expect(FileLock.holderPid(path: path) == getpid())  // from /proc/locks before anything is written
        try lock.writeOwner(pid: 1_234_567)
        try lock.writeOwner(pid: getpid())
        #expect(FileDescriptor.readText(path) == "\(getpid())\n")
        #expect(FileLock.holderPid(path: path) == getpid())
        lock.release()
        #expect(FileLock.holderPid(path: path) == nil)  // the stale pid in the file is not a holder
        #expect(throws: SystemError.self) { try lock.writeOwner(pid: getpid()) }
    }

    @Test func acquireWaitsForAnotherProcessAndTimesOut() throws {
        let dir = makeTempDir()
        let path = dir + "/reset.lock"
        defer { unlink(path); rmdir(dir) }
        let holder = try Spawner.spawn(SpawnSpec(
            executable: ProcessEnvironment.which("flock")!,
            arguments: ["flock", path, "sh", "-c", "echo locked; exec sleep 30"],
            environment: ProcessEnvironment.current(), stdout: .pipe))
        defer { holder.terminate(.standard(graceMilliseconds: 2000)) }
        let out = try #require(holder.takeStdout())
        defer { close(out) }
        var p = pollfd(fd: out, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 10_000) == 1)  // "locked" is printed once flock holds the lock

        #expect(FileLock.holderPid(path: path) == holder.pid)
        #expect(try FileLock.tryAcquire(path: path) == nil)
        let start = monotonicNanoseconds()
        #expect { try FileLock.acquire(path: path, deadline: .after(milliseconds: 200)) } throws: {
            guard let e = $0 as? SystemError else { return false }
            return e.code == .timedOut && e.message.contains(path) && e.message.contains("\(holder.pid)")
        }
        #expect(millisecondsSince(start) >= 199)

        // The kernel drops the lock when its holders die.
        #expect(holder.terminate(Teardown([.init(signal: SIGKILL, graceMilliseconds: 5000)])) != nil)
        let lock = try FileLock.acquire(path: path, deadline: .after(seconds: 10))
        #expect(lock.isHeld)
        #expect(try !otherProcessCanLock(path))
    }

    @Test func acquireSerialisesConcurrentHolders() throws {
        let dir = makeTempDir()
        let path = dir + "/serial.lock"
        defer { unlink(path); rmdir(dir) }
        let inside = Locked(0), maxInside = Locked(0)
        let errors = Locked([String]())
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<5 {
                do {
                    let lock = try FileLock.acquire(path: path, deadline: .after(seconds: 20))
                    let n = inside.withValue { $0 += 1; return $0 }
                    maxInside.withValue { $0 = max($0, n) }
                    if try FileLock.tryAcquire(path: path) != nil { errors.withValue { $0.append("a second holder got the lock") } }
                    inside.withValue { $0 -= 1 }
                    lock.release()
                } catch { errors.withValue { $0.append("\(error)") } }
            }
        }
        #expect(errors.current == [])
        #expect(maxInside.current == 1)
    }
}
