import Foundation
import SageSystem

/// A loopback TCP server that runs `handler` for every connection, each on its own thread, until
/// stopped. Handlers misbehave on purpose (garbage, stalls, huge length prefixes, the wrong protocol).
/// After its handler returns, a connection is held until the client hangs up, so a stall really stalls.
final class ScriptedServer: @unchecked Sendable {
    let listener: Listener
    var port: Int { listener.port }
    /// Connections accepted so far.
    let connections = Locked(0)
    private let stopping = Locked(false)
    private let acceptLoopEnded = DispatchSemaphore(value: 0)

    /// `handler` gets the connection and its 0-based number.
    init(_ handler: @escaping @Sendable (Socket, Int) throws -> Void) throws {
        listener = try Listener.tcp(port: 0)
        let listener = self.listener, stopping = self.stopping, connections = self.connections, ended = acceptLoopEnded
        Thread {
            defer { ended.signal() }
            while !stopping.current {
                // A bounded wait in poll, so that stop() is noticed; never a spin.
                guard let socket = try? listener.accept(deadline: .after(milliseconds: 50)) else { continue }
                let n = connections.withValue { c -> Int in c += 1; return c - 1 }
                Thread {
                    try? handler(socket, n)
                    let until = Deadline.after(seconds: 30)
                    while let b = try? socket.read(deadline: until), !b.isEmpty {}
                    socket.close()
                }.start()
            }
        }.start()
    }

    /// Stops accepting and closes the listening socket (connections in progress end when their client hangs up).
    func stop() {
        stopping.withValue { $0 = true }
        _ = acceptLoopEnded.wait(timeout: .now() + 5)
        listener.close()
    }

    deinit { if !stopping.current { stop() } }

    // MARK: handler helpers

    /// Reads whatever the client sent first (a RESP command or an HTTP request head).
    @discardableResult
    static func readRequest(_ socket: Socket, timeout seconds: Double = 5) throws -> [UInt8] {
        try socket.read(deadline: .after(seconds: seconds))
    }

    static func send(_ socket: Socket, _ text: String) throws {
        try socket.write(Array(text.utf8), deadline: .after(seconds: 5))
    }

    static func send(_ socket: Socket, _ bytes: [UInt8]) throws {
        try socket.write(bytes, deadline: .after(seconds: 5))
    }

    /// Reads a whole HTTP request head (up to the blank line).
    static func readHTTPRequest(_ socket: Socket) throws -> String {
        var data: [UInt8] = []
        let deadline = Deadline.after(seconds: 5)
        while !String(decoding: data, as: UTF8.self).contains("\r\n\r\n") {
            let b = try socket.read(deadline: deadline)
            if b.isEmpty { break }
            data += b
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A plain HTTP/1.1 response with a Content-Length body.
    static func httpResponse(_ status: Int, _ reason: String, body: String = "", headers: [String] = []) -> String {
        (["HTTP/1.1 \(status) \(reason)", "Content-Length: \(body.utf8.count)", "Connection: close"] + headers)
            .joined(separator: "\r\n") + "\r\n\r\n" + body
    }
}
