import Foundation
import Dispatch
import SageSystem

/// Accepts control connections on the project's Unix socket. Refuses other uids (SO_PEERCRED), caps request lines at
/// 1 MiB, disconnects stalled clients, and never lets one client's garbage reach the engine.
public final class ControlServer: @unchecked Sendable {
    public typealias Handler = @Sendable (_ request: ControlRequestLine, _ connection: ControlConnection) -> Void

    let listener: Listener
    let queue: DispatchQueue
    private var source: DispatchSourceRead?
    private let handler: Handler
    private var connections: [ObjectIdentifier: ControlConnection] = [:]
    /// A client that sends part of a line and then nothing for this long is disconnected.
    let stallSeconds: Double

    public init(path: String, queue: DispatchQueue, stallSeconds: Double = 10, handler: @escaping Handler) throws {
        self.listener = try Listener.unix(path: path, mode: 0o600)
        self.queue = queue; self.handler = handler; self.stallSeconds = stallSeconds
    }

    public func start() {
        let src = DispatchSource.makeReadSource(fileDescriptor: listener.fd, queue: queue)
        src.setEventHandler { [weak self] in self?.acceptAll() }
        // Closed only once Dispatch has let go of the descriptor (see `close`).
        let listener = self.listener
        src.setCancelHandler { listener.close() }
        src.resume()
        source = src
    }

    /// The socket file goes at once; the descriptor in the source's cancel handler. A descriptor closed while its
    /// source is still registered lets its number be reused under the event loop, which then crashes.
    public func close() {
        for c in connections.values { c.close() }
        connections = [:]
        FileDescriptor.remove(listener.label)
        if let source { source.cancel(); self.source = nil } else { listener.close() }
    }

    public var connectionCount: Int { connections.count }

    private func acceptAll() {
        while let socket = try? listener.accept() {
            // Only the user who owns the daemon may drive it.
            if let cred = try? socket.peerCredentials(), cred.uid != ProcessIdentity.effectiveUserID {
                var reply = ControlProtocol.line(ReplyEnvelope.failure(id: nil, "forbidden",
                    "this daemon belongs to uid \(ProcessIdentity.effectiveUserID); uid \(cred.uid) may not use it"))
                _ = FileDescriptor.writeAll(socket.fd, &reply)
                socket.close()
                continue
            }
            let c = ControlConnection(socket: socket, server: self)
            connections[ObjectIdentifier(c)] = c
            c.start()
        }
    }

    fileprivate func closed(_ c: ControlConnection) { connections[ObjectIdentifier(c)] = nil }
    fileprivate func dispatch(_ request: ControlRequestLine, from c: ControlConnection) { handler(request, c) }
}

/// A request line whose envelope has been read: its id and command; its arguments are decoded by the command's
/// handler, which knows their type.
public struct ControlRequestLine: Sendable {
    public let id: Int?
    public let command: String
    let bytes: Data

    /// The request's arguments as `R`, or why they are not.
    func arguments<R: ControlRequest>(_ type: R.Type) throws -> R {
        do { return try ControlProtocol.decoder().decode(RequestArguments<R>.self, from: bytes).args }
        catch { throw ControlProtocol.DecodeError(description: "the arguments of \"\(R.command)\" do not fit: \(ControlProtocol.explain(error))") }
    }
}

/// One client. Reads lines; writes replies without blocking the daemon (a client that stops reading is dropped once
/// 8 MiB of replies wait for it).
public final class ControlConnection: @unchecked Sendable {
    let socket: Socket
    weak var server: ControlServer?
    private var readSource: DispatchSourceRead?
    /// Only while a reply waits for the client to read (most connections never need one): created when a write
    /// would block, cancelled when the outbox is empty. A source left suspended and resumed only to be cancelled at
    /// close, beside the read source on the same fd, once crashed libdispatch's event loop
    /// (_dispatch_source_refs_finalize_unregistration).
    private var writeSource: DispatchSourceWrite?
    /// Sources on the socket not yet cancelled; the fd is closed when the last one has let go of it.
    private let sourcesOnFD = Locked(0)
    private var inbox: [UInt8] = []
    private var outbox: [UInt8] = []
    private var stallTimer: DispatchWorkItem?
    public private(set) var isClosed = false
    /// Cleanup to run when the client goes away (e.g. stop streaming logs to it).
    private var onClose: [@Sendable () -> Void] = []
    /// Runs once the outbox is empty (see `send(_:whenWritten:)`).
    private var afterWrite: [@Sendable () -> Void] = []

    init(socket: Socket, server: ControlServer) { self.socket = socket; self.server = server }

    func start() {
        guard let server else { return }
        let r = DispatchSource.makeReadSource(fileDescriptor: socket.fd, queue: server.queue)
        r.setEventHandler { [weak self] in self?.readable() }
        r.setCancelHandler(handler: releaser())
        r.resume()
        readSource = r
    }

    /// The cancel handler of a source on the socket: the last one closes the fd (the read source lives until the
    /// connection closes, so a write source's end never closes it early).
    private func releaser() -> @Sendable () -> Void {
        sourcesOnFD.withValue { $0 += 1 }
        let pending = sourcesOnFD, socket = self.socket
        return { if pending.withValue({ $0 -= 1; return $0 }) == 0 { socket.close() } }
    }

    /// Waits for the socket to take more (a client reading slowly, e.g. `logs -f`).
    private func awaitWritable() {
        guard writeSource == nil, !isClosed, let server else { return }
        let w = DispatchSource.makeWriteSource(fileDescriptor: socket.fd, queue: server.queue)
        w.setEventHandler { [weak self] in self?.flush() }
        w.setCancelHandler(handler: releaser())
        w.resume()
        writeSource = w
    }

    /// Runs `f` (on the server queue) when the connection closes.
    public func whenClosed(_ f: @escaping @Sendable () -> Void) {
        server?.queue.async { if self.isClosed { f() } else { self.onClose.append(f) } }
    }

    /// Sends a message (from any thread).
    func send<T: Encodable>(_ message: T) {
        let bytes = ControlProtocol.line(message)
        server?.queue.async { self.enqueue(bytes) }
    }

    /// Sends a message, then runs `written` once everything queued so far has reached the socket (or the client
    /// has gone): for a last reply before the daemon exits.
    func send<T: Encodable>(_ message: T, whenWritten written: @escaping @Sendable () -> Void) {
        let bytes = ControlProtocol.line(message)
        server?.queue.async {
            if self.isClosed { written(); return }
            self.afterWrite.append(written)
            self.enqueue(bytes)
        }
    }

    private func enqueue(_ bytes: [UInt8]) {
        guard !isClosed else { return }
        outbox += bytes
        if outbox.count > 8 << 20 { close(); return }
        flush()
    }

    private func flush() {
        guard !isClosed else { return }
        while !outbox.isEmpty {
            let written: Int?
            do { written = try socket.writeAvailable(outbox) } catch { close(); return }
            guard let n = written else { awaitWritable(); return }
            if n > 0 { outbox.removeFirst(n); continue }
            close(); return
        }
        writeSource?.cancel()
        writeSource = nil
        let done = afterWrite
        afterWrite = []
        for f in done { f() }
    }

    private func readable() {
        guard !isClosed else { return }
        let chunk: [UInt8]?
        do { chunk = try socket.readAvailable() } catch { close(); return }
        guard let chunk else { return }
        if chunk.isEmpty { close(); return }
        inbox += chunk
        while let nl = inbox.firstIndex(of: 10) {
            let line = inbox[..<nl]
            defer { inbox.removeSubrange(...nl) }
            if line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
            handleLine(line)
            if isClosed { return }
        }
        if inbox.count > ControlProtocol.maxLineBytes {
            enqueue(ControlProtocol.line(ReplyEnvelope.failure(id: nil, "too-large",
                "request line over \(ControlProtocol.maxLineBytes) bytes; closing the connection")))
            close(); return
        }
        armStallTimer()
    }

    /// A partial line that is not completed in time means a stalled or hostile client.
    private func armStallTimer() {
        stallTimer?.cancel()
        guard !inbox.isEmpty, let server else { return }
        let item = DispatchWorkItem { [weak self] in
            guard let self, !self.inbox.isEmpty else { return }
            self.enqueue(ControlProtocol.line(ReplyEnvelope.failure(id: nil, "timeout", "incomplete request line; closing the connection")))
            self.close()
        }
        stallTimer = item
        server.queue.asyncAfter(deadline: .now() + server.stallSeconds, execute: item)
    }

    private func handleLine(_ line: ArraySlice<UInt8>) {
        let bytes = Data(line)
        let header: RequestHeader
        // Replies go through `send` (queued) like every command's, so a client gets them in request order.
        do { header = try ControlProtocol.decoder().decode(RequestHeader.self, from: bytes) } catch {
            send(ReplyEnvelope.failure(id: nil, "bad-request", ControlProtocol.explain(error)))
            return
        }
        if let v = header.v, v != ControlProtocol.version {
            send(ReplyEnvelope.failure(id: header.id, "version-mismatch", ControlProtocol.unsupportedMessage(v)))
            return
        }
        guard let cmd = header.cmd else {
            send(ReplyEnvelope.failure(id: header.id, "bad-request", "a request needs a \"cmd\" string"))
            return
        }
        server?.dispatch(ControlRequestLine(id: header.id, command: cmd, bytes: bytes), from: self)
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        stallTimer?.cancel()
        readSource?.cancel()
        writeSource?.cancel()
        writeSource = nil
        socket.shutdown()
        server?.closed(self)
        for f in onClose + afterWrite { f() }
        onClose = []
        afterWrite = []
    }
}
