/// Decodes backend messages incrementally: one message per call, nil (and nothing consumed) while the bytes
/// are short, an error on anything malformed. A declared length is checked against the bound before any
/// allocation, so a hostile 2 GiB length prefix costs nothing.
public struct PostgresBackendDecoder: Sendable {
    public static let defaultMaximumMessageLength = 64 << 20

    public let maximumMessageLength: Int
    /// True until the first message has been decoded. The first answer to a StartupMessage can only be
    /// Authentication ('R'), ErrorResponse ('E') or NegotiateProtocolVersion ('v'); anything else means the
    /// peer is not a PostgreSQL server, and the decoder says what it looks like instead.
    public private(set) var atConnectionStart: Bool

    public init(maximumMessageLength: Int = PostgresBackendDecoder.defaultMaximumMessageLength, atConnectionStart: Bool = false) {
        self.maximumMessageLength = maximumMessageLength
        self.atConnectionStart = atConnectionStart
    }

    /// Decodes the message starting at `bytes[index]`. On success `index` moves past it; otherwise it stays.
    public mutating func decode(_ bytes: [UInt8], from index: inout Int) throws -> PostgresBackendMessage? {
        let available = bytes.count - index
        guard available > 0 else { return nil }
        let type = bytes[index]
        if atConnectionStart, type != UInt8(ascii: "R"), type != UInt8(ascii: "E"), type != UInt8(ascii: "v") {
            if let error = PostgresBackendDecoder.foreignPeer(bytes[index...]) { throw error }
            return nil  // what is there so far could still be "HTTP/" or "SSH-": wait for the rest
        }
        guard available >= 5 else { return nil }
        if bytes[index..<index + 5].elementsEqual("HTTP/".utf8) {
            throw PostgresBackendDecoder.foreignPeer(bytes[index...]) ?? WireError(.malformed, "HTTP server")
        }
        let length = Int(Bytes.readUInt32(bytes, at: index + 1))
        guard length >= 4 else {
            throw WireError(.malformed, "PostgreSQL \(PostgresBackendDecoder.name(type)) message declares length \(length), below the minimum of 4")
        }
        guard length <= maximumMessageLength else {
            throw WireError(.tooLarge, "PostgreSQL \(PostgresBackendDecoder.name(type)) message declares \(length) bytes, over the \(maximumMessageLength >> 20) MiB limit: the peer is not a PostgreSQL server or is broken")
        }
        guard available >= 1 + length else { return nil }
        var payload = Payload(bytes: bytes, start: index + 5, end: index + 1 + length, type: type)
        let message = try PostgresBackendDecoder.decodeBody(&payload)
        index += 1 + length
        atConnectionStart = false
        return message
    }

    /// Describes a frame cut short, for when the connection ends in the middle of one.
    public static func describePartialMessage(_ bytes: [UInt8], from index: Int) -> String? {
        let available = bytes.count - index
        guard available > 0 else { return nil }
        if available < 5 { return "\(available) byte(s) of a \(name(bytes[index])) message header" }
        let length = Int(Bytes.readUInt32(bytes, at: index + 1))
        return "\(available) of the \(length + 1) bytes of a \(name(bytes[index])) message"
    }

    // MARK: bodies

    struct Payload {
        let bytes: [UInt8]
        var start: Int
        let end: Int
        let type: UInt8

        var remaining: Int { end - start }

        func fail(_ what: String) -> WireError {
            WireError(.malformed, "PostgreSQL \(PostgresBackendDecoder.name(type)) message: \(what)")
        }
        mutating func int32() throws -> Int32 {
            guard remaining >= 4 else { throw fail("ends before a 4-byte integer") }
            defer { start += 4 }
            return Int32(bitPattern: Bytes.readUInt32(bytes, at: start))
        }
        mutating func int16() throws -> Int16 {
            guard remaining >= 2 else { throw fail("ends before a 2-byte integer") }
            defer { start += 2 }
            return Int16(bitPattern: UInt16(bytes[start]) << 8 | UInt16(bytes[start + 1]))
        }
        mutating func int8() throws -> Int8 {
            guard remaining >= 1 else { throw fail("ends before a 1-byte integer") }
            defer { start += 1 }
            return Int8(bitPattern: bytes[start])
        }
        mutating func take(_ count: Int) throws -> [UInt8] {
            guard count >= 0, count <= remaining else { throw fail("a \(count)-byte value runs past the end of the message") }
            defer { start += count }
            return Array(bytes[start..<start + count])
        }
        mutating func rest() -> [UInt8] {
            defer { start = end }
            return Array(bytes[start..<end])
        }
        mutating func cString() throws -> String {
            var i = start
            while i < end && bytes[i] != 0 { i += 1 }
            guard i < end else { throw fail("a string is missing its NUL terminator") }
            defer { start = i + 1 }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }
        func expectEnd() throws {
            guard remaining == 0 else { throw fail("\(remaining) unexpected byte(s) after the last field") }
        }
    }

    static func decodeBody(_ p: inout Payload) throws -> PostgresBackendMessage {
        switch p.type {
        case UInt8(ascii: "R"): return .authentication(try decodeAuthentication(&p))
        case UInt8(ascii: "S"):
            let name = try p.cString(), value = try p.cString()
            try p.expectEnd()
            return .parameterStatus(name: name, value: value)
        case UInt8(ascii: "K"):
            let pid = try p.int32()
            guard (4...256).contains(p.remaining) else { throw p.fail("a \(p.remaining)-byte secret key (expected 4 to 256)") }
            return .backendKeyData(processID: pid, secretKey: p.rest())
        case UInt8(ascii: "Z"):
            let raw = try p.take(1)[0]
            try p.expectEnd()
            guard let status = PostgresBackendMessage.TransactionStatus(rawValue: raw) else {
                throw p.fail("unknown transaction status 0x\(Bytes.hex([raw]))")
            }
            return .readyForQuery(status)
        case UInt8(ascii: "E"): return .errorResponse(try decodeDiagnostic(&p))
        case UInt8(ascii: "N"): return .noticeResponse(try decodeDiagnostic(&p))
        case UInt8(ascii: "T"):
            let count = Int(try p.int16())
            // Each field is at least a NUL and 18 bytes of numbers: check before reserving anything.
            guard count >= 0, count * 19 <= p.remaining else { throw p.fail("\(count) columns cannot fit in \(p.remaining) bytes") }
            var columns = [PostgresColumn]()
            columns.reserveCapacity(count)
            for _ in 0..<count {
                let name = try p.cString()
                let table = UInt32(bitPattern: try p.int32()), attribute = try p.int16()
                let typeOID = UInt32(bitPattern: try p.int32()), size = try p.int16()
                let modifier = try p.int32(), format = try p.int16()
                columns.append(PostgresColumn(name: name, tableOID: table, columnAttributeNumber: attribute, typeOID: typeOID,
                                              typeSize: size, typeModifier: modifier, formatCode: format))
            }
            try p.expectEnd()
            return .rowDescription(columns)
        case UInt8(ascii: "D"):
            let count = Int(try p.int16())
            guard count >= 0, count * 4 <= p.remaining else { throw p.fail("\(count) values cannot fit in \(p.remaining) bytes") }
            var values = [[UInt8]?]()
            values.reserveCapacity(count)
            for _ in 0..<count {
                let length = Int(try p.int32())
                if length == -1 { values.append(nil); continue }
                guard length >= 0 else { throw p.fail("value length \(length) is negative") }
                values.append(try p.take(length))
            }
            try p.expectEnd()
            return .dataRow(values)
        case UInt8(ascii: "C"):
            let tag = try p.cString()
            try p.expectEnd()
            return .commandComplete(tag: tag)
        case UInt8(ascii: "I"):
            try p.expectEnd()
            return .emptyQueryResponse
        case UInt8(ascii: "A"):
            let pid = try p.int32()
            let channel = try p.cString(), payload = try p.cString()
            try p.expectEnd()
            return .notificationResponse(processID: pid, channel: channel, payload: payload)
        case UInt8(ascii: "v"):
            let minor = try p.int32()
            let count = Int(try p.int32())
            guard count >= 0, count <= p.remaining else { throw p.fail("\(count) options cannot fit in \(p.remaining) bytes") }
            var options = [String]()
            for _ in 0..<count { options.append(try p.cString()) }
            try p.expectEnd()
            return .negotiateProtocolVersion(newestMinorVersion: minor, unrecognizedOptions: options)
        case UInt8(ascii: "G"), UInt8(ascii: "H"), UInt8(ascii: "W"):
            let direction: PostgresBackendMessage.CopyDirection =
                p.type == UInt8(ascii: "G") ? .into : p.type == UInt8(ascii: "H") ? .outOf : .both
            let format = try p.int8()
            let count = Int(try p.int16())
            guard count >= 0, count * 2 == p.remaining else { throw p.fail("\(count) column formats do not match \(p.remaining) bytes") }
            var formats = [Int16]()
            for _ in 0..<count { formats.append(try p.int16()) }
            return .copyResponse(direction, format: format, columnFormats: formats)
        case UInt8(ascii: "d"): return .copyData(p.rest())
        case UInt8(ascii: "c"):
            try p.expectEnd()
            return .copyDone
        default:
            throw WireError(.malformed, "unknown PostgreSQL message type \(name(p.type)): \(describeUnknown(p.type))")
        }
    }

    static func decodeAuthentication(_ p: inout Payload) throws -> PostgresBackendMessage.Authentication {
        let code = try p.int32()
        switch code {
        case 0: try p.expectEnd(); return .ok
        case 3: try p.expectEnd(); return .cleartextPassword
        case 5:
            let salt = try p.take(4)
            try p.expectEnd()
            return .md5Password(salt: salt)
        case 10:
            var mechanisms = [String]()
            while true {
                let m = try p.cString()
                if m.isEmpty { break }
                mechanisms.append(m)
            }
            try p.expectEnd()
            return .sasl(mechanisms: mechanisms)
        case 11: return .saslContinue(p.rest())
        case 12: return .saslFinal(p.rest())
        case 2, 6, 7, 8, 9:
            _ = p.rest()
            return .unsupported(code: code)
        default:
            throw p.fail("unknown authentication request \(code)")
        }
    }

    static func decodeDiagnostic(_ p: inout Payload) throws -> PostgresDiagnostic {
        var fields = [UInt8: String]()
        while true {
            let code = try p.take(1)[0]
            if code == 0 { break }
            fields[code] = try p.cString()
        }
        try p.expectEnd()
        return PostgresDiagnostic(fields: fields)
    }

    // MARK: naming things for people

    static let messageNames: [UInt8: String] = [
        UInt8(ascii: "R"): "Authentication", UInt8(ascii: "S"): "ParameterStatus", UInt8(ascii: "K"): "BackendKeyData",
        UInt8(ascii: "Z"): "ReadyForQuery", UInt8(ascii: "E"): "ErrorResponse", UInt8(ascii: "N"): "NoticeResponse",
        UInt8(ascii: "T"): "RowDescription", UInt8(ascii: "D"): "DataRow", UInt8(ascii: "C"): "CommandComplete",
        UInt8(ascii: "I"): "EmptyQueryResponse", UInt8(ascii: "A"): "NotificationResponse",
        UInt8(ascii: "v"): "NegotiateProtocolVersion", UInt8(ascii: "G"): "CopyInResponse", UInt8(ascii: "H"): "CopyOutResponse",
        UInt8(ascii: "W"): "CopyBothResponse", UInt8(ascii: "d"): "CopyData", UInt8(ascii: "c"): "CopyDone",
    ]

    /// `'T' (RowDescription)`, or `0x07` for a byte that is not a printable character.
    static func name(_ type: UInt8) -> String {
        let shown = (0x21...0x7e).contains(type) ? "'\(Character(Unicode.Scalar(type)))'" : "0x\(Bytes.hex([type]))"
        if let n = messageNames[type] { return "\(shown) (\(n))" }
        return shown
    }

    static func describeUnknown(_ type: UInt8) -> String {
        switch type {
        case UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "n"), UInt8(ascii: "s"), UInt8(ascii: "t"):
            return "an extended-query reply, but this connection only uses simple queries"
        default:
            return "not part of PostgreSQL's protocol 3.0; the peer is not a PostgreSQL server or the stream is out of step"
        }
    }

    /// Says what a peer that does not speak PostgreSQL looks like, from the first bytes it sent. Nil while
    /// those bytes could still turn into a signature we recognise.
    static func foreignPeer(_ head: ArraySlice<UInt8>) -> WireError? {
        let signatures: [(String, String)] = [("HTTP/", "an HTTP server"), ("SSH-", "an SSH server")]
        for (signature, what) in signatures {
            let sig = Array(signature.utf8)
            if head.count < sig.count && head.elementsEqual(sig.prefix(head.count)) { return nil }
            if head.starts(with: sig) {
                return WireError(.malformed, "this is \(what), not PostgreSQL (it answered \"\(excerpt(head))\"); check the host and port")
            }
        }
        let first = head[head.startIndex]
        switch first {
        case UInt8(ascii: "S"), UInt8(ascii: "N"):
            return WireError(.malformed, "the server answered '\(Character(Unicode.Scalar(first)))' as if to a TLS request, then bytes that are not PostgreSQL: this looks like an endpoint that only speaks TLS, which sagedev's client does not; connect to PostgreSQL directly (plain connections allowed in pg_hba.conf)")
        case 0x16:
            return WireError(.malformed, "the server started a TLS handshake: this is a TLS-only endpoint, not plain PostgreSQL; check the host and port")
        case UInt8(ascii: "-"), UInt8(ascii: "+"):
            return WireError(.malformed, "this looks like a Redis/Valkey server, not PostgreSQL (it answered \"\(excerpt(head))\"); check the host and port")
        default:
            return WireError(.malformed, "this is not a PostgreSQL server: its first byte is \(name(first)), where PostgreSQL sends 'R' or 'E' (answered \"\(excerpt(head))\"); check the host and port")
        }
    }

    /// The first line of what the peer sent, printable characters only, at most 60.
    static func excerpt(_ head: ArraySlice<UInt8>) -> String {
        var out = ""
        for b in head.prefix(60) {
            if b == 0x0d || b == 0x0a { break }
            out.append((0x20...0x7e).contains(b) ? Character(Unicode.Scalar(b)) : "·")
        }
        return out
    }
}

/// A byte buffer in front of the decoder: append what the socket gave, take whole messages out.
/// After an error it keeps failing with that error: the stream cannot be resynchronised.
public struct PostgresMessageReader: Sendable {
    public private(set) var decoder: PostgresBackendDecoder
    private var buffer: [UInt8] = []
    private var index = 0
    private var failure: WireError?

    public init(decoder: PostgresBackendDecoder = PostgresBackendDecoder(atConnectionStart: true)) {
        self.decoder = decoder
    }

    public var bufferedByteCount: Int { buffer.count - index }

    public mutating func append(_ bytes: [UInt8]) {
        if index > 0 && index >= buffer.count / 2 {
            buffer.removeSubrange(0..<index)
            index = 0
        }
        buffer += bytes
    }

    public mutating func next() throws -> PostgresBackendMessage? {
        if let failure { throw failure }
        do {
            return try decoder.decode(buffer, from: &index)
        } catch let e as WireError {
            failure = e
            throw e
        }
    }

    /// What is left of a message that has not fully arrived (nil when nothing is pending).
    public var partialMessageDescription: String? { PostgresBackendDecoder.describePartialMessage(buffer, from: index) }
}
