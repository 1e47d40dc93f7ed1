import Foundation
import Glibc
import SageSystem

/// The client side of the control socket: one request, its streamed events, its final reply.
public final class DaemonClient: @unchecked Sendable {
    public struct Failure: Error, @unchecked Sendable, CustomStringConvertible {
        public var code: String
        public var message: String
        public var result: [String: Any]?
        public var description: String { message }
    }

    private let socket: Socket
    private var buffer: [UInt8] = []
    private var nextID = 1

    private init(socket: Socket) { self.socket = socket }

    /// Connects to the project's daemon; throws SystemError (.notFound / .connectionRefused) when none runs.
    public static func connect(_ paths: ProjectPaths, deadline: Deadline = .after(seconds: 2)) throws -> DaemonClient {
        DaemonClient(socket: try Socket.connect(unixPath: paths.socket, deadline: deadline))
    }

    /// Sends a command and returns its result, calling `onEvent` for each streamed event.
    /// A reply with ok=false throws `Failure` (carrying any result the daemon attached).
    @discardableResult
    public func request(_ cmd: String, _ args: [String: Any] = [:], deadline: Deadline = .after(seconds: 30),
                        onEvent: ([String: Any]) -> Void = { _ in }) throws -> [String: Any] {
        let id = nextID; nextID += 1
        try socket.write(ControlProtocol.encode(["id": id, "cmd": cmd, "args": args]), deadline: deadline)
        while true {
            let msg = try readMessage(deadline: deadline)
            if msg["event"] != nil { onEvent(msg); continue }
            if let ok = msg["ok"] as? Bool {
                if ok { return msg["result"] as? [String: Any] ?? [:] }
                let e = msg["error"] as? [String: Any]
                throw Failure(code: e?["code"] as? String ?? "error", message: e?["message"] as? String ?? "the daemon reported an error",
                              result: msg["result"] as? [String: Any])
            }
        }
    }

    private func readMessage(deadline: Deadline) throws -> [String: Any] {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = buffer[..<nl]
                defer { buffer.removeSubrange(...nl) }
                return try ControlProtocol.decode(line)
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
        var st = stat()
        let logStart = stat(paths.daemonLog, &st) == 0 ? UInt64(st.st_size) : 0
        let child = try Spawner.spawn(SpawnSpec(executable: executable, arguments: [executable, "daemon", "--project", paths.root] + extraArguments,
                                                environment: environment, workingDirectory: paths.root, newSession: true,
                                                stdin: .null, stdout: .file(paths.daemonLog, append: true),
                                                stderr: .file(paths.daemonLog, append: true)))
        while !deadline.hasPassed {
            if let c = try? DaemonClient.connect(paths, deadline: .after(milliseconds: 500)) { return (c, true) }
            if let status = child.wait(deadline: .after(milliseconds: 10)) {
                // Another `up` may have won the race for the lock: its daemon is the one to use.
                if let c = try? DaemonClient.connect(paths, deadline: .after(milliseconds: 500)) { return (c, false) }
                let log = FileHandle(forReadingAtPath: paths.daemonLog)
                try? log?.seek(toOffset: logStart)
                let written = (try? log?.readToEnd()) ?? Data()
                try? log?.close()
                let tail = String(decoding: written, as: UTF8.self).split(separator: "\n").suffix(5).joined(separator: "\n")
                throw DaemonClient.Failure(code: "daemon-exited", message: "the daemon exited (\(status)) while starting:\n\(tail)", result: nil)
            }
        }
        throw DaemonClient.Failure(code: "timeout", message: "the daemon did not open \(paths.socket) in time; see \(paths.daemonLog)", result: nil)
    }

    /// Whether a daemon holds the project's lock (even if its socket does not answer).
    public static func isRunning(_ paths: ProjectPaths) -> Int32? {
        guard FileDescriptor.exists(paths.daemonLock) else { return nil }
        return FileLock.holderPid(path: paths.daemonLock)
    }
}
