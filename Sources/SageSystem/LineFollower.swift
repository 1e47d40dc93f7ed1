import Glibc
import Dispatch
import CSageSystem

/// A long-running child whose stdout and stderr are read as lines (on a queue of its own, woken by the kernel
/// through poll(2), never on a timer). `onExit` runs once, after both streams ended and the child was reaped.
public final class LineFollower: @unchecked Sendable {
    public enum Stream: Sendable, Equatable { case stdout, stderr }

    public let argv: [String]
    public var pid: Int32 { child.pid }
    private let child: ChildProcess
    private let queue: DispatchQueue
    private let onLine: @Sendable (String, Stream) -> Void
    private let onExit: @Sendable (ExitStatus) -> Void
    private var partial: [Stream: [UInt8]] = [:]
    private var openStreams = 0
    private var exited = false
    private var finished = false
    private let done = DispatchGroup()
    private let result = Locked<ExitStatus?>(nil)

    private init(argv: [String], child: ChildProcess, onLine: @escaping @Sendable (String, Stream) -> Void,
                 onExit: @escaping @Sendable (ExitStatus) -> Void) {
        self.argv = argv; self.child = child; self.onLine = onLine; self.onExit = onExit
        self.queue = DispatchQueue(label: "sagedev.follow.\(child.pid)")
    }

    public static func start(_ argv: [String], environment: [String: String], workingDirectory: String? = nil,
                             onLine: @escaping @Sendable (String, Stream) -> Void,
                             onExit: @escaping @Sendable (ExitStatus) -> Void) throws -> LineFollower {
        guard let name = argv.first, let exe = ProcessEnvironment.which(name, path: environment["PATH"]) else {
            throw SystemError(.notFound, "\(argv.first ?? ""): command not found on PATH")
        }
        let child = try Spawner.spawn(SpawnSpec(executable: exe, arguments: argv, environment: environment,
                                                workingDirectory: workingDirectory, newSession: true,
                                                stdin: .null, stdout: .pipe, stderr: .pipe))
        let f = LineFollower(argv: argv, child: child, onLine: onLine, onExit: onExit)
        f.begin()
        return f
    }

    /// One blocking loop on the follower's own queue: poll(2) on the two pipes and the child's pidfd until both
    /// streams ended and the child exited. (Dispatch read sources here, created and cancelled for every short-lived
    /// child, met a use-after-free inside libdispatch's epoll loop under ThreadSanitizer, one run in ten.)
    private func begin() {
        done.enter()
        var streams: [(Stream, Int32)] = []
        for (stream, fd) in [(Stream.stdout, child.takeStdout()), (.stderr, child.takeStderr())] {
            guard let fd else { continue }
            FileDescriptor.setNonBlocking(fd)
            streams.append((stream, fd))
        }
        openStreams = streams.count
        if child.pidfd < 0 { exited = true }  // no pidfd: the streams' end is the end
        let found = streams
        queue.async { [self] in self.run(found) }
    }

    private func run(_ initial: [(Stream, Int32)]) {
        var streams = initial
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !streams.isEmpty || !exited {
            var fds = streams.map { pollfd(fd: $0.1, events: Int16(POLLIN), revents: 0) }
            if !exited { fds.append(pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 { if csage_errno() == EINTR { continue }; break }
            if !exited, fds.last!.revents != 0 {
                exited = true
                // The group may hold our pipes open after the leader ends (the plugin under `docker`).
                child.signalGroup(SIGKILL)
            }
            var open: [(Stream, Int32)] = []
            for (i, (stream, fd)) in streams.enumerated() {
                if fds[i].revents == 0 || drain(fd, stream, &buffer) { open.append((stream, fd)) } else { Glibc.close(fd) }
            }
            streams = open
            openStreams = streams.count
        }
        for (_, fd) in streams { Glibc.close(fd) }
        exited = true
        openStreams = 0
        finishIfDone()
    }

    /// Reads what the pipe has; false once the stream is over (end of file or an error).
    private func drain(_ fd: Int32, _ stream: Stream, _ buf: inout [UInt8]) -> Bool {
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n > 0 {
                emitLines(stream, buf[0..<n])
                continue
            }
            if n < 0, case let e = csage_errno(), e == EAGAIN || e == EINTR { return true }
            if let rest = partial[stream], !rest.isEmpty { onLine(LineFollower.clean(rest[...]), stream) }
            partial[stream] = nil
            return false
        }
    }

    private func emitLines(_ stream: Stream, _ bytes: ArraySlice<UInt8>) {
        var buf = partial[stream, default: []]
        buf += bytes
        var start = 0
        for i in buf.indices where buf[i] == 10 {
            onLine(LineFollower.clean(buf[start..<i]), stream)
            start = i + 1
        }
        buf.removeFirst(start)
        if buf.count > 256 * 1024 { onLine(LineFollower.clean(buf[...]), stream); buf = [] }
        partial[stream] = buf
    }

    /// Drops a trailing CR and ANSI control sequences (Compose writes ESC[2K before log lines even with --ansi never).
    public static func clean(_ bytes: ArraySlice<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == 0x1B, i + 1 < bytes.endIndex, bytes[i + 1] == UInt8(ascii: "[") {
                var j = i + 2
                while j < bytes.endIndex, !(0x40...0x7E).contains(bytes[j]) { j += 1 }
                i = j + 1
                continue
            }
            out.append(b)
            i += 1
        }
        if out.last == 13 { out.removeLast() }
        return String(decoding: out, as: UTF8.self)
    }

    private func finishIfDone() {
        guard exited, openStreams == 0, !finished else { return }
        finished = true
        let status = child.wait(deadline: .after(seconds: 5)) ?? .exited(-1)
        result.withValue { $0 = status }
        onExit(status)
        done.leave()
    }

    /// Ends the child (SIGTERM to its group, then SIGKILL) and waits for `onExit` to have run.
    public func stop(graceMilliseconds: Int = 2000) {
        if result.current == nil {
            child.signalGroup(SIGTERM)
            if !waitForExit(deadline: .after(milliseconds: graceMilliseconds)) {
                child.signalGroup(SIGKILL)
                _ = waitForExit(deadline: .after(seconds: 10))
            }
        }
    }

    /// Waits until the child ended and its output was delivered; false at the deadline.
    @discardableResult
    public func waitForExit(deadline: Deadline) -> Bool {
        done.wait(timeout: .now() + .milliseconds(Int(deadline.remainingMilliseconds))) == .success
    }

    public var exitStatus: ExitStatus? { result.current }
}
