import Foundation
import SageSystem

/// The client side of the control socket: one request, its streamed events, its final reply.
public final class DaemonClient: @unchecked Sendable {
    /// A request that did not succeed: the daemon's error (its code, message and details), or the connection's.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var error: ControlError
        public var code: String { error.code }
        public var message: String { error.message }
        public var description: String { message }
        public init(code: String, message: String) { error = ControlError(code: code, message: message) }
        public init(_ error: ControlError) { self.error = error }
    }

    private let socket: Socket
    private var buffer: [UInt8] = []
    private var nextID = 1

    private init(socket: Socket) { self.socket = socket }

    /// Connects to the project's daemon; throws SystemError (.notFound / .connectionRefused) when none runs.
    public static func connect(_ paths: ProjectPaths, deadline: Deadline = .after(seconds: 2)) throws -> DaemonClient {
        DaemonClient(socket: try Socket.connect(unixPath: paths.socket, deadline: deadline))
    }

    /// Sends a request and returns its reply, calling `onEvent` for each event streamed before it.
    /// A failed request throws `Failure`; so does a daemon of another protocol version (the message says what to do).
    @discardableResult
    public func send<R: ControlRequest>(_ request: R, deadline: Deadline = .after(seconds: 30),
                                        onEvent: (ControlEvent) -> Void = { _ in }) throws -> R.Response {
        let id = nextID; nextID += 1
        try socket.write(ControlProtocol.line(RequestEnvelope(id: id, args: request)), deadline: deadline)
        let decoder = ControlProtocol.decoder()
        while true {
            let line = try readLine(deadline: deadline)
            guard let header = try? decoder.decode(IncomingHeader.self, from: line) else {
                throw Failure(code: "bad-reply", message: "the daemon sent a line that is not a JSON object: \(String(decoding: line.prefix(120), as: UTF8.self))")
            }
            if let v = header.v, v != ControlProtocol.version {
                throw Failure(code: "version-mismatch", message: ControlProtocol.mismatchMessage(daemonProtocol: v, daemonVersion: header.sagedev))
            }
            // Replies to other requests (a null id: a refusal of the whole connection) are for us too.
            if let other = header.id, other != id { continue }
            if header.event != nil {
                // An event of a kind this client does not know is skipped.
                if let e = try? decoder.decode(ControlEvent.self, from: line) { onEvent(e) }
                continue
            }
            guard let ok = header.ok else { continue }
            do {
                if ok { return try decoder.decode(IncomingResult<R.Response>.self, from: line).result }
                throw Failure(try decoder.decode(IncomingError.self, from: line).error)
            } catch let e as DecodingError {
                throw Failure(code: "bad-reply", message: "the daemon's reply to \(R.command) does not fit: \(ControlProtocol.explain(e))")
            }
        }
    }

    private func readLine(deadline: Deadline) throws -> Data {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                if line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
                return line
            }
            let chunk = try socket.read(deadline: deadline)
            if chunk.isEmpty { throw Failure(code: "closed", message: "the daemon closed the connection (see .sagedev/logs/daemon.log)") }
            buffer += chunk
        }
    }

    public func close() { socket.close() }
}

/// Starts the project's daemon in the background when none answers.
public enum DaemonLauncher {
    /// Connects to the running daemon, or starts one (detached: new session, output to daemon.log) and connects.
    public static func connectOrStart(_ paths: ProjectPaths, executable: String, environment: [String: String],
                                      extraArguments: [String] = [], deadline: Deadline = .after(seconds: 20)) throws -> (DaemonClient, started: Bool) {
        if let c = try? DaemonClient.connect(paths) { return (c, false) }
        try paths.ensure()
        // daemon.log accumulates across runs: a failed start shows only what this daemon wrote.
        let logStart = FileDescriptor.info(paths.daemonLog)?.size ?? 0
        var env = environment
        env[ReadinessNotification.variable] = String(ReadinessNotification.childFD)
        let child = try Spawner.spawn(SpawnSpec(executable: executable, arguments: [executable, "daemon", "--project", paths.root] + extraArguments,
                                                environment: env, workingDirectory: paths.root, newSession: true,
                                                stdin: .null, stdout: .file(paths.daemonLog, append: true),
                                                stderr: .file(paths.daemonLog, append: true), notificationPipe: true))
        // The daemon writes to the pipe once its socket listens (no polling for the socket); a daemon that exits
        // first closes the pipe, and the loop below says why.
        if let fd = child.notificationFD, ReadinessNotification.wait(fd, deadline: deadline),
           let c = try? DaemonClient.connect(paths, deadline: .after(milliseconds: 500)) {
            return (c, true)
        }
        while !deadline.hasPassed {
            if let c = try? DaemonClient.connect(paths, deadline: .after(milliseconds: 500)) { return (c, true) }
            if let status = child.wait(deadline: .after(milliseconds: 10)) {
                // Another `up` may have won the race for the lock: its daemon is the one to use.
                if let c = try? DaemonClient.connect(paths, deadline: .after(milliseconds: 500)) { return (c, false) }
                let size = FileDescriptor.info(paths.daemonLog)?.size ?? logStart
                let written = FileDescriptor.readFile(paths.daemonLog, offset: logStart, maximum: max(0, size - logStart)) ?? []
                let tail = String(decoding: written, as: UTF8.self).split(separator: "\n").suffix(5).joined(separator: "\n")
                throw DaemonClient.Failure(code: "daemon-exited", message: "the daemon exited (\(status)) while starting:\n\(tail)")
            }
        }
        throw DaemonClient.Failure(code: "timeout", message: "the daemon did not open \(paths.socket) in time; see \(paths.daemonLog)")
    }

    /// Whether a daemon holds the project's lock (even if its socket does not answer).
    public static func isRunning(_ paths: ProjectPaths) -> Int32? {
        guard FileDescriptor.exists(paths.daemonLock) else { return nil }
        return FileLock.holderPid(path: paths.daemonLock)
    }
}
