import SageSystem

/// Per-service logs: appended to `.sagedev/logs/<service>.log` (rotated at a size limit, N kept) and kept in an
/// in-memory ring buffer for `logs`, `status` and failure reports. Thread-safe.
public final class LogStore: @unchecked Sendable {
    public struct Line: Sendable, Equatable {
        public var service: String
        public var time: Double
        public var text: String
    }

    public let directory: String
    public let rotateBytes: Int
    public let keep: Int
    public let ringCapacity: Int
    private let lock = Lock()
    private var rings: [String: [Line]] = [:]
    private var files: [String: (fd: Int32, size: Int)] = [:]
    private var partial: [String: [UInt8]] = [:]
    private var subscribers: [Int: @Sendable (Line) -> Void] = [:]
    private var nextSubscriber = 0

    public init(directory: String, rotateBytes: Int = 10 << 20, keep: Int = 3, ringCapacity: Int = 2000) {
        self.directory = directory; self.rotateBytes = rotateBytes; self.keep = keep; self.ringCapacity = ringCapacity
        try? FileDescriptor.makeDirectories(directory, mode: 0o755)
    }
    deinit { for (_, f) in files { FileDescriptor.close(f.fd) } }

    public func path(for service: String) -> String { "\(directory)/\(service).log" }

    /// Appends raw output bytes; complete lines are stored, a trailing partial line waits for the rest.
    public func append(_ service: String, bytes: [UInt8]) {
        for l in splitLines(service, bytes) { record(service, l, persist: true) }
    }

    /// Takes output that is already in the service's log file (the service writes it there itself) into memory.
    public func ingest(_ service: String, bytes: [UInt8]) {
        for l in splitLines(service, bytes) { record(service, l, persist: false) }
    }

    /// Rotates a file that a process holds open in append mode: copy it aside, then truncate it in place.
    public func copyTruncate(_ service: String) {
        lock.locked {
            let p = path(for: service)
            if let f = files[service] { FileDescriptor.close(f.fd); files[service] = nil }
            FileDescriptor.remove("\(p).\(keep)")
            if keep > 1 { for i in stride(from: keep - 1, through: 1, by: -1) { FileDescriptor.rename("\(p).\(i)", to: "\(p).\(i + 1)") } }
            if let bytes = FileDescriptor.readFile(p, limit: Int.max) {
                try? FileDescriptor.writeFileAtomically("\(p).1", bytes, mode: 0o644)
            }
            FileDescriptor.truncate(p, to: 0)
        }
    }

    /// Appends one line (without its newline).
    public func appendLine(_ service: String, _ text: String, time: Double = wallClockSeconds()) {
        record(service, text, persist: true, time: time)
    }

    private func splitLines(_ service: String, _ bytes: [UInt8]) -> [String] {
        var lines: [String] = []
        lock.locked {
            var buf = partial[service, default: []] + bytes
            var start = 0
            for i in buf.indices where buf[i] == 10 {
                lines.append(String(decoding: buf[start..<i], as: UTF8.self))
                start = i + 1
            }
            buf.removeFirst(start)
            if buf.count > 64 * 1024 { lines.append(String(decoding: buf, as: UTF8.self)); buf = [] }
            partial[service] = buf
        }
        return lines
    }

    private func record(_ service: String, _ text: String, persist: Bool, time: Double = wallClockSeconds()) {
        let line = Line(service: service, time: time, text: text)
        let subs: [@Sendable (Line) -> Void] = lock.locked {
            var ring = rings[service, default: []]
            ring.append(line)
            if ring.count > ringCapacity { ring.removeFirst(ring.count - ringCapacity) }
            rings[service] = ring
            if persist { writeToFile(service, text + "\n") }
            return Array(subscribers.values)
        }
        for s in subs { s(line) }
    }

    /// The last `n` lines of a service from memory.
    public func tail(_ service: String, _ n: Int) -> [Line] {
        lock.locked { Array((rings[service] ?? []).suffix(n)) }
    }

    /// The last `n` lines, from memory, or from the log file when memory has fewer (after a daemon restart).
    public func tailIncludingFile(_ service: String, _ n: Int) -> [String] {
        let mem = tail(service, n).map(\.text)
        if mem.count >= n { return mem }
        guard let text = FileDescriptor.readText(path(for: service)) else { return mem }
        return Array(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().suffix(n).map(String.init))
    }

    /// Calls `handler` for every new line until `unsubscribe` is called with the returned token.
    public func subscribe(_ handler: @escaping @Sendable (Line) -> Void) -> Int {
        lock.locked { nextSubscriber += 1; subscribers[nextSubscriber] = handler; return nextSubscriber }
    }
    public func unsubscribe(_ token: Int) { lock.locked { _ = subscribers.removeValue(forKey: token) } }

    private func writeToFile(_ service: String, _ text: String) {
        var entry = files[service]
        if entry == nil {
            let p = path(for: service)
            guard let fd = FileDescriptor.openForAppending(p, mode: 0o644) else { return }
            entry = (fd, FileDescriptor.info(fd: fd)?.size ?? 0)
        }
        guard var e = entry else { return }
        var bytes = Array(text.utf8)
        FileDescriptor.writeAll(e.fd, &bytes)
        e.size += bytes.count
        if e.size >= rotateBytes {
            FileDescriptor.close(e.fd)
            rotate(service)
            files[service] = nil
        } else {
            files[service] = e
        }
    }

    /// service.log → service.log.1 → … → service.log.<keep>; the oldest is dropped.
    private func rotate(_ service: String) {
        let p = path(for: service)
        FileDescriptor.remove("\(p).\(keep)")
        if keep > 1 { for i in stride(from: keep - 1, through: 1, by: -1) { FileDescriptor.rename("\(p).\(i)", to: "\(p).\(i + 1)") } }
        FileDescriptor.rename(p, to: "\(p).1")
    }
}
