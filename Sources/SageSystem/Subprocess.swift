import Glibc
import CSageSystem

/// How a child ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    init(waitStatus s: Int32) {
        if s & 0x7f == 0 { self = .exited((s >> 8) & 0xff) } else { self = .signalled(s & 0x7f) }
    }
    public var isSuccess: Bool { self == .exited(0) }
    public var description: String {
        switch self {
        case .exited(let c): return "exit code \(c)"
        case .signalled(let s): return "signal \(s) (\(signalName(s)))"
        }
    }
}

public func signalName(_ s: Int32) -> String {
    switch s {
    case SIGKILL: return "SIGKILL"; case SIGTERM: return "SIGTERM"; case SIGINT: return "SIGINT"
    case SIGSEGV: return "SIGSEGV"; case SIGABRT: return "SIGABRT"; case SIGHUP: return "SIGHUP"
    case SIGQUIT: return "SIGQUIT"; case SIGPIPE: return "SIGPIPE"; case SIGBUS: return "SIGBUS"
    default: return "signal \(s)"
    }
}

/// Where one of a child's standard streams goes.
public enum Redirect: Sendable, Equatable {
    case inherit
    case null
    case pipe                        // a pipe whose parent end is on the ChildProcess
    case file(String, append: Bool)  // opened by the parent, mode 0644
    case fd(Int32)                   // an fd the parent owns (dup'ed into place)
}

/// A spawn is a value: what to run, with what, where, and in which process group.
public struct SpawnSpec: Sendable, Equatable {
    public var executable: String
    public var arguments: [String]          // argv, argv[0] included
    public var environment: [String: String]
    public var workingDirectory: String?
    /// Start a new session (and so a new process group whose id is the child's pid), detached from our terminal.
    public var newSession: Bool
    public var stdin: Redirect
    public var stdout: Redirect
    public var stderr: Redirect
    /// Give the child the write end of a pipe as fd 3 (`ReadinessNotification.childFD`), and keep the read end
    /// (`ChildProcess.notificationFD`): the child writes a line there once it is ready, and its exit closes it.
    public var notificationPipe: Bool

    public init(executable: String, arguments: [String]? = nil, environment: [String: String],
                workingDirectory: String? = nil, newSession: Bool = true,
                stdin: Redirect = .null, stdout: Redirect = .inherit, stderr: Redirect = .inherit,
                notificationPipe: Bool = false) {
        self.executable = executable
        self.arguments = arguments ?? [executable]
        self.environment = environment; self.workingDirectory = workingDirectory; self.newSession = newSession
        self.stdin = stdin; self.stdout = stdout; self.stderr = stderr; self.notificationPipe = notificationPipe
    }

    /// `/bin/sh -c command`, for user-supplied dev and install commands.
    public static func shell(_ command: String, environment: [String: String], workingDirectory: String?) -> SpawnSpec {
        SpawnSpec(executable: "/bin/sh", arguments: ["/bin/sh", "-c", command], environment: environment,
                  workingDirectory: workingDirectory)
    }
}

/// A running (or finished) child. Exit is observed through its pidfd, never by polling on a timer.
public final class ChildProcess: @unchecked Sendable {
    public let pid: Int32
    /// Readable when the child has exited (poll it, or hand it to an event loop).
    public private(set) var pidfd: Int32
    public private(set) var stdinFD: Int32?
    public private(set) var stdoutFD: Int32?
    public private(set) var stderrFD: Int32?
    /// The read end of the notification pipe (`SpawnSpec.notificationPipe`); the owner closes it.
    public internal(set) var notificationFD: Int32?
    public let processGroup: Int32?
    private let state = Locked<ExitStatus?>(nil)

    init(pid: Int32, pidfd: Int32, stdin: Int32?, stdout: Int32?, stderr: Int32?, processGroup: Int32?) {
        self.pid = pid; self.pidfd = pidfd; self.stdinFD = stdin; self.stdoutFD = stdout; self.stderrFD = stderr
        self.processGroup = processGroup
    }
    deinit {
        if pidfd >= 0 { close(pidfd) }
        for fd in [stdinFD, stdoutFD, stderrFD] { if let fd { close(fd) } }
    }

    /// Hands the parent's pipe ends to the caller, who then owns (and closes) them.
    public func takeStdout() -> Int32? { defer { stdoutFD = nil }; return stdoutFD }
    public func takeStderr() -> Int32? { defer { stderrFD = nil }; return stderrFD }
    public func takeStdin() -> Int32? { defer { stdinFD = nil }; return stdinFD }
    public func closeStdin() { if let fd = stdinFD { close(fd); stdinFD = nil } }

    /// The exit status if the child has exited (reaps it); nil while it runs.
    public func tryWait() -> ExitStatus? {
        state.withValue { s in
            if let s { return s }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { s = ExitStatus(waitStatus: status) }
            else if r < 0 && csage_errno() == ECHILD { s = .exited(-1) }  // reaped elsewhere; status unknown
            return s
        }
    }

    /// Waits until the child exits or the deadline passes (nil then). Sleeps in poll on the pidfd.
    public func wait(deadline: Deadline) -> ExitStatus? {
        while true {
            if let s = tryWait() { return s }
            let ms = deadline.remainingMilliseconds
            if ms == 0 { return nil }
            var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, ms)
        }
    }

    /// Sends a signal to the child only.
    @discardableResult public func signal(_ sig: Int32) -> Bool {
        if tryWait() != nil { return false }
        return csage_pidfd_send_signal(pidfd, sig) == 0
    }
    /// Sends a signal to the child's whole process group (when it has its own), else to the child.
    @discardableResult public func signalGroup(_ sig: Int32) -> Bool {
        if let g = processGroup { return kill(-g, sig) == 0 }
        return signal(sig)
    }

    /// Carries out a teardown: each step signals the group, then waits up to its grace for the whole group (not
    /// just the leader) to be gone, since a port or a data directory is free only when the last member exits.
    @discardableResult public func terminate(_ teardown: Teardown) -> ExitStatus? {
        for step in teardown.steps {
            if groupIsGone() { break }
            signalGroup(step.signal)
            if waitForGroup(deadline: .after(milliseconds: step.graceMilliseconds)) { break }
        }
        return tryWait()
    }

    /// The leader has exited (and is reaped) and no member of its group remains.
    private func groupIsGone() -> Bool {
        guard tryWait() != nil else { return false }
        guard let g = processGroup else { return true }
        return ProcFS.processesHoldingResources(inGroup: g).isEmpty
    }

    /// Waits for the leader through its pidfd, then for the rest of the group in short timed waits.
    private func waitForGroup(deadline: Deadline) -> Bool {
        guard wait(deadline: deadline) != nil else { return false }
        while !groupIsGone() {
            if deadline.hasPassed { return false }
            var p = pollfd(fd: -1, events: 0, revents: 0)
            _ = poll(&p, 0, 2)
        }
        return true
    }
}

/// A teardown is a list of steps: signal the process group, then wait up to a grace period.
public struct Teardown: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var signal: Int32
        public var graceMilliseconds: Int
        public init(signal: Int32, graceMilliseconds: Int) { self.signal = signal; self.graceMilliseconds = graceMilliseconds }
    }
    public var steps: [Step]
    public init(_ steps: [Step]) { self.steps = steps }

    /// SIGTERM, wait, then SIGKILL.
    public static func standard(graceMilliseconds: Int = 5000) -> Teardown {
        Teardown([Step(signal: SIGTERM, graceMilliseconds: graceMilliseconds), Step(signal: SIGKILL, graceMilliseconds: 5000)])
    }
    /// PostgreSQL's fast shutdown is SIGINT (rolls back open transactions, checkpoints, exits).
    public static func postgresFast(graceMilliseconds: Int = 10000) -> Teardown {
        Teardown([Step(signal: SIGINT, graceMilliseconds: graceMilliseconds), Step(signal: SIGQUIT, graceMilliseconds: 3000),
                  Step(signal: SIGKILL, graceMilliseconds: 5000)])
    }
}

public enum Spawner {
    /// Spawns with posix_spawn (never fork from Swift). Signal mask and dispositions are reset in the child,
    /// and every fd above 2 is closed so nothing of the parent leaks into it.
    public static func spawn(_ spec: SpawnSpec) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }

        var parentEnds: [Int32?] = [nil, nil, nil]
        var toCloseInParent: [Int32] = []
        defer { for fd in toCloseInParent { close(fd) } }
        func cleanupOnError() { for case let fd? in parentEnds { close(fd) } }

        for (target, redirect) in [(Int32(0), spec.stdin), (1, spec.stdout), (2, spec.stderr)] {
            switch redirect {
            case .inherit:
                break
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .pipe:
                let p: (read: Int32, write: Int32)
                do { p = try FileDescriptor.pipe() } catch { cleanupOnError(); throw error }
                let (childEnd, parentEnd) = target == 0 ? (p.read, p.write) : (p.write, p.read)
                posix_spawn_file_actions_adddup2(&actions, childEnd, target)
                toCloseInParent.append(childEnd)
                parentEnds[Int(target)] = parentEnd
            case .file(let path, let append):
                let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0o644)
                guard fd >= 0 else { cleanupOnError(); throw SystemError.fromErrno("open log file", path) }
                posix_spawn_file_actions_adddup2(&actions, fd, target)
                toCloseInParent.append(fd)
            case .fd(let fd):
                posix_spawn_file_actions_adddup2(&actions, fd, target)
            }
        }
        var notification: Int32?
        if spec.notificationPipe {
            let p: (read: Int32, write: Int32)
            do { p = try FileDescriptor.pipe() } catch { cleanupOnError(); throw error }
            posix_spawn_file_actions_adddup2(&actions, p.write, ReadinessNotification.childFD)
            toCloseInParent.append(p.write)
            notification = p.read
        }
        withUnsafeMutablePointer(to: &actions) { p in
            _ = csage_spawn_addclosefrom(UnsafeMutableRawPointer(p), spec.notificationPipe ? ReadinessNotification.childFD + 1 : 3)
            if let dir = spec.workingDirectory { _ = csage_spawn_addchdir(UnsafeMutableRawPointer(p), dir) }
        }

        var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if spec.newSession { flags |= csage_spawn_setsid_flag() }
        posix_spawnattr_setflags(&attr, flags)
        var empty = sigset_t(); sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t(); sigfillset(&all); sigdelset(&all, SIGKILL); sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attr, &all)

        let argv = spec.arguments.map { strdup($0) } + [nil]
        let envp = spec.environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv { free(p) }; for p in envp { free(p) } }

        var pid: pid_t = 0
        let rc = posix_spawn(&pid, spec.executable, &actions, &attr, argv, envp)
        guard rc == 0 else {
            cleanupOnError()
            if let notification { close(notification) }
            var hint = ""
            if rc == ENOENT { hint = spec.workingDirectory.map { FileDescriptor.isDirectory($0) ? "" : " (working directory \($0) does not exist)" } ?? "" }
            throw SystemError(.spawn, "cannot start \(spec.executable): \(String(cString: strerror(rc)))\(hint)", errno: rc)
        }
        let pidfd = csage_pidfd_open(pid)
        let child = ChildProcess(pid: pid, pidfd: pidfd, stdin: parentEnds[0], stdout: parentEnds[1], stderr: parentEnds[2],
                                 processGroup: spec.newSession ? pid : nil)
        child.notificationFD = notification
        return child
    }
}

/// What a one-shot command produced.
public struct CompletedProcess: Sendable {
    public var status: ExitStatus
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public enum Subprocess {
    /// Runs a command to completion, capturing stdout and stderr (each capped at `outputLimit`).
    /// argv[0] is looked up on PATH. At the deadline the whole process group is killed and `.timedOut` thrown.
    public static func run(_ argv: [String], environment: [String: String]? = nil, workingDirectory: String? = nil,
                           input: [UInt8] = [], deadline: Deadline, outputLimit: Int = 64 << 20) throws -> CompletedProcess {
        guard let name = argv.first else { throw SystemError(.spawn, "empty command") }
        let env = environment ?? ProcessEnvironment.current()
        guard let exe = ProcessEnvironment.which(name, path: env["PATH"]) else {
            throw SystemError(.notFound, "\(name): command not found on PATH", errno: ENOENT)
        }
        let child = try Spawner.spawn(SpawnSpec(executable: exe, arguments: argv, environment: env,
                                                workingDirectory: workingDirectory, newSession: true,
                                                stdin: input.isEmpty ? .null : .pipe, stdout: .pipe, stderr: .pipe))
        var out = [UInt8](), err = [UInt8]()
        var inFD = child.takeStdin(), outFD = child.takeStdout(), errFD = child.takeStderr()
        defer { for fd in [inFD, outFD, errFD] { if let fd { close(fd) } } }
        var written = 0
        if let fd = inFD { FileDescriptor.setNonBlocking(fd) }
        var buf = [UInt8](repeating: 0, count: 65536)
        while outFD != nil || errFD != nil || inFD != nil {
            var fds: [pollfd] = []
            if let fd = inFD { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)) }
            if let fd = outFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            if let fd = errFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let ms = deadline.remainingMilliseconds
            if ms == 0 {
                child.terminate(Teardown([.init(signal: SIGKILL, graceMilliseconds: 2000)]))
                throw SystemError(.timedOut, "\(argv.joined(separator: " ")) did not finish before its deadline; it was stopped", errno: ETIMEDOUT)
            }
            let n = poll(&fds, nfds_t(fds.count), ms)
            if n <= 0 { continue }
            for p in fds where p.revents != 0 {
                if p.fd == inFD {
                    let k = input.withUnsafeBytes { Glibc.write(p.fd, $0.baseAddress! + written, $0.count - written) }
                    if k > 0 { written += k }
                    if k < 0 && csage_errno() != EAGAIN || written >= input.count { close(p.fd); inFD = nil }
                    continue
                }
                let k = buf.withUnsafeMutableBytes { Glibc.read(p.fd, $0.baseAddress!, $0.count) }
                if k > 0 {
                    if p.fd == outFD { if out.count < outputLimit { out += buf[0..<k] } }
                    else if err.count < outputLimit { err += buf[0..<k] }
                } else if k == 0 || csage_errno() != EINTR && csage_errno() != EAGAIN {
                    close(p.fd)
                    if p.fd == outFD { outFD = nil } else { errFD = nil }
                }
            }
        }
        guard let status = child.wait(deadline: deadline) else {
            child.terminate(Teardown([.init(signal: SIGKILL, graceMilliseconds: 2000)]))
            throw SystemError(.timedOut, "\(argv.joined(separator: " ")) did not exit before its deadline; it was stopped", errno: ETIMEDOUT)
        }
        return CompletedProcess(status: status, stdout: out, stderr: err)
    }
}

/// A child says it is ready by writing a line to the fd its parent passed it (as s6's notification-fd, or
/// sd_notify without systemd): the parent waits on the pipe instead of polling for a socket, and the child's exit
/// (the pipe's end of stream) ends the wait as surely.
public enum ReadinessNotification {
    /// The fd the child is given, and the variable that names it in its environment.
    public static let childFD: Int32 = 3
    public static let variable = "SAGEDEV_NOTIFY_FD"

    /// In the child: the fd its environment names, with the variable removed (nothing the child starts sees it).
    /// The fd is made close-on-exec. nil when the variable is not set or names no open fd above 2.
    public static func take(from environment: inout [String: String]) -> Int32? {
        guard let text = environment.removeValue(forKey: variable), let fd = Int32(text), fd > 2,
              fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else { return nil }
        return fd
    }

    /// In the child, once ready: writes "ready" and closes the fd.
    public static func signal(_ fd: Int32) {
        FileDescriptor.writeAll(fd, "ready\n")
        _ = Glibc.close(fd)
    }

    /// In the parent: true once the child has written its line; false at end of stream (it exited, or closed the
    /// fd without a word) or at the deadline. Closes `fd`.
    public static func wait(_ fd: Int32, deadline: Deadline) -> Bool {
        defer { _ = Glibc.close(fd) }
        var got: [UInt8] = []
        while FileDescriptor.waitReadable(fd, deadline: deadline) {
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && csage_errno() == EINTR { continue }
            guard n > 0 else { return false }
            got += buffer[0..<n]
            if got.contains(10) { return true }
        }
        return false
    }
}
