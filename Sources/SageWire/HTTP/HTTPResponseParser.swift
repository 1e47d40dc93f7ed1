/// One response header as received (names compare case-insensitively through `HTTPResponse.header`).
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// A complete HTTP/1.x response: status, headers and a body cut at the configured cap.
public struct HTTPResponse: Sendable, Equatable {
    /// "HTTP/1.1"
    public var version: String
    public var status: Int
    public var reason: String
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// The body was longer than the cap: `body` holds its first bytes and the rest was not read.
    public var bodyTruncated: Bool

    public init(version: String = "HTTP/1.1", status: Int, reason: String = "", headers: [HTTPHeader] = [],
                body: [UInt8] = [], bodyTruncated: Bool = false) {
        self.version = version; self.status = status; self.reason = reason; self.headers = headers
        self.body = body; self.bodyTruncated = bodyTruncated
    }

    /// The first header with this name (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
    /// "200 OK", "503 Service Unavailable"
    public var statusLine: String { reason.isEmpty ? String(status) : "\(status) \(reason)" }
}

public struct HTTPLimits: Sendable, Equatable {
    /// Status line plus headers (and chunked trailers).
    public var maxHeadBytes: Int
    public var maxHeaderCount: Int
    /// Body bytes kept; a longer body ends the read with `bodyTruncated`.
    public var maxBodyBytes: Int

    public init(maxHeadBytes: Int, maxHeaderCount: Int, maxBodyBytes: Int) {
        self.maxHeadBytes = maxHeadBytes; self.maxHeaderCount = maxHeaderCount; self.maxBodyBytes = maxBodyBytes
    }

    public static let standard = HTTPLimits(maxHeadBytes: 64 << 10, maxHeaderCount: 200, maxBodyBytes: 1 << 20)
    /// A health check reads the status and a little of the body.
    public static let probe = HTTPLimits(maxHeadBytes: 32 << 10, maxHeaderCount: 100, maxBodyBytes: 64 << 10)
}

/// An incremental HTTP/1.1 response reader. Feed it bytes as they arrive; it returns the response once
/// complete (Content-Length, chunked, or at end of stream when neither frames the body).
/// Throws `WireError` for a peer that does not speak HTTP or breaks the framing.
public struct HTTPResponseParser: Sendable {
    public let limits: HTTPLimits
    /// False for a HEAD request: the response has no body whatever its headers say.
    public let expectsBody: Bool

    private enum Chunk: Sendable { case size, data(remaining: Int), dataEnd, trailers }
    private enum State: Sendable {
        case head
        case fixedLength(remaining: Int)
        case chunked(Chunk)
        case untilClose
        case done
    }

    private var state = State.head
    private var buffer: [UInt8] = []
    private var start = 0
    /// Where the search for the end of the head resumes (so a slow peer costs linear time).
    private var headScanned = 0
    private var trailerBytes = 0
    private var head: (version: String, status: Int, reason: String, headers: [HTTPHeader])?
    private var body: [UInt8] = []
    private var truncated = false
    public private(set) var receivedByteCount = 0
    public private(set) var response: HTTPResponse?

    public init(limits: HTTPLimits = .standard, expectsBody: Bool = true) {
        self.limits = limits; self.expectsBody = expectsBody
    }

    /// Takes the next bytes from the peer; returns the response once it is complete, nil while more are needed.
    public mutating func received<C: Collection>(_ bytes: C) throws -> HTTPResponse? where C.Element == UInt8 {
        if let response { return response }
        receivedByteCount += bytes.count
        buffer.append(contentsOf: bytes)
        try advance()
        return response
    }

    /// The peer closed the connection: completes a body framed by the close, or throws for a cut-off response.
    public mutating func receivedEndOfStream() throws -> HTTPResponse {
        if let response { return response }
        if case .untilClose = state { finish(); return response! }
        if receivedByteCount == 0 {
            throw WireError(.unexpected, "HTTP: the peer closed the connection without sending a response")
        }
        let phase: String
        switch state {
        case .head: phase = "in the status line or headers"
        default: phase = "in the body"
        }
        throw WireError(.unexpected, "HTTP: the peer closed the connection \(phase), after \(receivedByteCount) bytes")
    }

    // MARK: state machine

    private mutating func advance() throws {
        while true {
            switch state {
            case .done:
                return
            case .head:
                guard try parseHead() else { return }
            case .fixedLength(let remaining):
                let available = buffer.count - start
                guard available > 0 else { return }
                let n = min(available, remaining)
                keep(buffer[start..<(start + n)]); start += n
                if remaining - n > 0 && body.count >= limits.maxBodyBytes { truncated = true }
                if truncated || remaining - n == 0 { finish(); return }
                state = .fixedLength(remaining: remaining - n)
            case .untilClose:
                keep(buffer[start...]); start = buffer.count
                if truncated { finish() }
                compact()
                return
            case .chunked(let chunk):
                guard try advanceChunked(chunk) else { compact(); return }
            }
        }
    }

    private mutating func keep(_ bytes: ArraySlice<UInt8>) {
        let room = limits.maxBodyBytes - body.count
        if bytes.count > room {
            body.append(contentsOf: bytes.prefix(room)); truncated = true
        } else {
            body.append(contentsOf: bytes)
        }
    }

    private mutating func finish() {
        guard let h = head else { return }
        response = HTTPResponse(version: h.version, status: h.status, reason: h.reason, headers: h.headers,
                                body: body, bodyTruncated: truncated)
        state = .done
        buffer = []; start = 0
    }

    private mutating func compact() {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start); headScanned = max(0, headScanned - start); start = 0
        }
    }

    /// One CRLF- (or LF-) terminated line from `start`, bounded; nil when it has not fully arrived.
    private mutating func line(limit: Int, what: String) throws -> ArraySlice<UInt8>? {
        var i = start
        let end = min(buffer.count, start + limit + 2)
        while i < end {
            if buffer[i] == 10 {
                var lineEnd = i
                if lineEnd > start && buffer[lineEnd - 1] == 13 { lineEnd -= 1 }
                let l = buffer[start..<lineEnd]
                start = i + 1
                return l
            }
            i += 1
        }
        if buffer.count - start > limit + 1 {
            throw WireError(.tooLarge, "HTTP: \(what) is longer than \(limit) bytes")
        }
        return nil
    }

    // MARK: head

    /// Parses the status line and headers once they have all arrived. Returns false while waiting.
    private mutating func parseHead() throws -> Bool {
        try checkLooksLikeHTTP()
        // Find the blank line that ends the head: "\r\n\r\n" or, leniently, "\n\n".
        var i = max(start, headScanned)
        var headEnd: Int?, bodyStart = 0
        while i < buffer.count {
            if buffer[i] == 10 {
                if i + 1 < buffer.count, buffer[i + 1] == 10 { headEnd = i; bodyStart = i + 2; break }
                if i + 2 < buffer.count, buffer[i + 1] == 13, buffer[i + 2] == 10 { headEnd = i; bodyStart = i + 3; break }
            }
            if i - start >= limits.maxHeadBytes { break }
            i += 1
        }
        guard let end = headEnd else {
            if buffer.count - start > limits.maxHeadBytes {
                throw WireError(.tooLarge, "HTTP: the status line and headers are longer than \(limits.maxHeadBytes) bytes")
            }
            // Resume a little before the end: the terminator may straddle two reads.
            headScanned = max(start, buffer.count - 3)
            return false
        }
        let headBytes = buffer[start..<end]
        start = bodyStart; headScanned = start
        try interpretHead(headBytes)
        return true
    }

    /// Fails fast, on the first bytes, when the peer speaks something else.
    private func checkLooksLikeHTTP() throws {
        let expected = Array("HTTP/".utf8)
        let n = min(buffer.count - start, expected.count)
        for k in 0..<n where buffer[start + k] != expected[k] {
            throw WireError(.malformed, "not an HTTP response: the peer sent \(Self.quote(buffer[start...]))\(Self.guessProtocol(buffer[start...]))")
        }
    }

    private mutating func interpretHead(_ bytes: ArraySlice<UInt8>) throws {
        var lines = bytes.split(separator: 10, omittingEmptySubsequences: false).map { l -> ArraySlice<UInt8> in
            l.last == 13 ? l.dropLast() : l
        }
        let statusLine = lines.removeFirst()
        // HTTP-version SP 3DIGIT [SP reason]
        let parts = statusLine.split(separator: 32, maxSplits: 2, omittingEmptySubsequences: false)
        let version = String(decoding: parts[0], as: UTF8.self)
        let versionOK = parts[0].count == 8 && version.hasPrefix("HTTP/") && parts[0].dropFirst(5).enumerated().allSatisfy { k, b in
            k == 1 ? b == UInt8(ascii: ".") : (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
        }
        guard versionOK, parts.count >= 2, parts[1].count == 3,
              parts[1].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let status = Int(String(decoding: parts[1], as: UTF8.self)), status >= 100 else {
            throw WireError(.malformed, "HTTP: invalid status line \(Self.quote(statusLine))")
        }
        let reason = parts.count > 2 ? String(decoding: parts[2], as: UTF8.self) : ""
        guard lines.count <= limits.maxHeaderCount else {
            throw WireError(.tooLarge, "HTTP: \(lines.count) headers, over the limit of \(limits.maxHeaderCount)")
        }
        var headers: [HTTPHeader] = []
        headers.reserveCapacity(lines.count)
        for l in lines {
            guard let colon = l.firstIndex(of: UInt8(ascii: ":")), colon > l.startIndex,
                  l[l.startIndex..<colon].allSatisfy(Self.isTokenByte) else {
                throw WireError(.malformed, "HTTP: invalid header line \(Self.quote(l))")
            }
            let name = String(decoding: l[l.startIndex..<colon], as: UTF8.self)
            var value = l[(colon + 1)...]
            while let f = value.first, f == 32 || f == 9 { value = value.dropFirst() }
            while let b = value.last, b == 32 || b == 9 { value = value.dropLast() }
            headers.append(HTTPHeader(name, String(decoding: value, as: UTF8.self)))
        }

        // Interim responses (100 Continue, 103 Early Hints) precede the real one.
        if status < 200 && status != 101 { return }
        head = (version, status, reason, headers)

        if !expectsBody || status == 101 || status == 204 || status == 304 { finish(); return }
        let lower = headers.map { ($0.name.lowercased(), $0.value) }
        if let te = lower.last(where: { $0.0 == "transfer-encoding" }) {
            let last = te.1.split(separator: ",").last.map { $0.trimmingSpaces.lowercased() } ?? ""
            state = last == "chunked" ? .chunked(.size) : .untilClose
            return
        }
        let lengths = lower.filter { $0.0 == "content-length" }.flatMap { $0.1.split(separator: ",", omittingEmptySubsequences: false) }
        if !lengths.isEmpty {
            let values = Set(lengths.map { $0.trimmingSpaces })
            guard values.count == 1, let text = values.first, !text.isEmpty, text.count <= 18,
                  text.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(text) else {
                throw WireError(.malformed, "HTTP: invalid Content-Length \"\(lengths.joined(separator: ","))\"")
            }
            if n == 0 { finish() } else { state = .fixedLength(remaining: n) }
            return
        }
        state = .untilClose
    }

    // MARK: chunked body

    /// One step of chunked decoding; false while waiting for more bytes.
    private mutating func advanceChunked(_ chunk: Chunk) throws -> Bool {
        switch chunk {
        case .size:
            guard let l = try line(limit: 1024, what: "a chunk-size line") else { return false }
            let sizeField = l.prefix { $0 != UInt8(ascii: ";") }.drop { $0 == 32 || $0 == 9 }
            let digits = sizeField.prefix { Self.hexValue($0) != nil }
            let rest = sizeField.dropFirst(digits.count)
            guard !digits.isEmpty, digits.count <= 15, rest.allSatisfy({ $0 == 32 || $0 == 9 }) else {
                throw WireError(.malformed, "HTTP: invalid chunk size \(Self.quote(l))")
            }
            let size = digits.reduce(0) { $0 << 4 | Int(Self.hexValue($1)!) }
            state = .chunked(size == 0 ? .trailers : .data(remaining: size))
            return true
        case .data(let remaining):
            let available = buffer.count - start
            guard available > 0 else { return false }
            let n = min(available, remaining)
            keep(buffer[start..<(start + n)]); start += n
            if truncated { finish(); return false }
            state = .chunked(remaining == n ? .dataEnd : .data(remaining: remaining - n))
            return true
        case .dataEnd:
            guard start < buffer.count else { return false }
            if buffer[start] == 13 {
                guard start + 1 < buffer.count else { return false }
                guard buffer[start + 1] == 10 else { throw WireError(.malformed, "HTTP: chunk data is not followed by CRLF") }
                start += 2
            } else if buffer[start] == 10 {
                start += 1
            } else {
                throw WireError(.malformed, "HTTP: chunk data is longer than its declared size (no CRLF after it)")
            }
            state = .chunked(.size)
            return true
        case .trailers:
            let before = start
            guard let l = try line(limit: limits.maxHeadBytes, what: "a trailer line") else { return false }
            trailerBytes += start - before
            if trailerBytes > limits.maxHeadBytes {
                throw WireError(.tooLarge, "HTTP: trailers are longer than \(limits.maxHeadBytes) bytes")
            }
            if l.isEmpty { finish(); return false }
            return true
        }
    }

    // MARK: helpers

    private static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }

    static func quote(_ bytes: ArraySlice<UInt8>) -> String { Bytes.quoted(bytes.prefix(48), truncated: bytes.count > 48) }

    /// A hint for the person at the terminal when the port holds some other server.
    static func guessProtocol(_ bytes: ArraySlice<UInt8>) -> String {
        guard let first = bytes.first else { return "" }
        switch first {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "*"),
             UInt8(ascii: "%"), UInt8(ascii: "_"):
            return " (that is RESP: a Valkey or Redis server?)"
        case UInt8(ascii: "E"), UInt8(ascii: "R"), UInt8(ascii: "N"):
            // A PostgreSQL message: type byte, then a big-endian length whose first byte is 0.
            if bytes.count >= 2, bytes[bytes.startIndex + 1] == 0 { return " (that looks like a PostgreSQL server)" }
            return ""
        case 0x16:
            return " (that is a TLS handshake: the server wants https)"
        default:
            return ""
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
