/// The fields of an ErrorResponse or NoticeResponse, every one kept (PostgreSQL protocol 3.0, section 55.8).
public struct PostgresDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// Field type byte → value, exactly as the server sent them.
    public var fields: [UInt8: String]

    public init(fields: [UInt8: String]) { self.fields = fields }

    /// Builds one from field letters, for tests and for errors made up on the client side.
    public init(_ pairs: [(Character, String)]) {
        var f = [UInt8: String]()
        for (k, v) in pairs { if let b = k.asciiValue { f[b] = v } }
        fields = f
    }

    public subscript(code: Character) -> String? { code.asciiValue.flatMap { fields[$0] } }

    /// Non-localized severity (V) when present, else the localized one (S): ERROR, FATAL, PANIC, WARNING, NOTICE, …
    public var severity: String { self["V"] ?? self["S"] ?? "ERROR" }
    public var localizedSeverity: String? { self["S"] }
    /// The five-character SQLSTATE (C), e.g. 28P01, 3D000, 57P03, 42601.
    public var sqlState: String? { self["C"] }
    public var message: String { self["M"] ?? "" }
    public var detail: String? { self["D"] }
    public var hint: String? { self["H"] }
    /// 1-based character index into the query (P).
    public var position: Int? { self["P"].flatMap { Int($0) } }
    public var internalPosition: Int? { self["p"].flatMap { Int($0) } }
    public var internalQuery: String? { self["q"] }
    /// The call stack context (W), e.g. `PL/pgSQL function f() line 3 at RAISE`.
    public var `where`: String? { self["W"] }
    public var schemaName: String? { self["s"] }
    public var tableName: String? { self["t"] }
    public var columnName: String? { self["c"] }
    public var dataTypeName: String? { self["d"] }
    public var constraintName: String? { self["n"] }
    public var file: String? { self["F"] }
    public var line: String? { self["L"] }
    public var routine: String? { self["R"] }

    /// FATAL and PANIC end the session: the server closes the connection after sending them.
    public var endsSession: Bool { severity == "FATAL" || severity == "PANIC" }

    /// One line a person can read: `ERROR 42601: syntax error at or near "SELEC" (at character 1)`, then detail and hint.
    public var description: String {
        var s = severity
        if let code = sqlState { s += " \(code)" }
        s += ": \(message)"
        if let p = position { s += " (at character \(p))" }
        if let d = detail { s += "\n  DETAIL: \(d)" }
        if let h = hint { s += "\n  HINT: \(h)" }
        if let w = `where` { s += "\n  WHERE: \(w)" }
        return s
    }
}

/// One column of a RowDescription.
public struct PostgresColumn: Sendable, Equatable {
    public var name: String
    public var tableOID: UInt32
    public var columnAttributeNumber: Int16
    public var typeOID: UInt32
    public var typeSize: Int16
    public var typeModifier: Int32
    /// 0 text, 1 binary. The simple query protocol always returns text.
    public var formatCode: Int16

    public init(name: String, tableOID: UInt32 = 0, columnAttributeNumber: Int16 = 0, typeOID: UInt32 = 25,
                typeSize: Int16 = -1, typeModifier: Int32 = -1, formatCode: Int16 = 0) {
        self.name = name; self.tableOID = tableOID; self.columnAttributeNumber = columnAttributeNumber
        self.typeOID = typeOID; self.typeSize = typeSize; self.typeModifier = typeModifier; self.formatCode = formatCode
    }
}

/// Every backend message sagedev's client understands.
public enum PostgresBackendMessage: Sendable, Equatable {
    public enum Authentication: Sendable, Equatable {
        case ok
        case cleartextPassword
        case md5Password(salt: [UInt8])
        /// The SASL mechanisms the server offers, e.g. ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"].
        case sasl(mechanisms: [String])
        case saslContinue([UInt8])
        case saslFinal([UInt8])
        /// Kerberos (2), SCM credentials (6), GSSAPI (7, 8), SSPI (9): valid requests that sagedev does not answer.
        case unsupported(code: Int32)
    }

    public enum TransactionStatus: UInt8, Sendable {
        case idle = 73          // 'I'
        case inTransaction = 84 // 'T'
        case failed = 69        // 'E'
    }

    public enum CopyDirection: Sendable, Equatable { case into, outOf, both }

    case authentication(Authentication)
    case parameterStatus(name: String, value: String)
    /// The key is 4 bytes in protocol 3.0 (longer in 3.2).
    case backendKeyData(processID: Int32, secretKey: [UInt8])
    case readyForQuery(TransactionStatus)
    case noticeResponse(PostgresDiagnostic)
    case errorResponse(PostgresDiagnostic)
    case rowDescription([PostgresColumn])
    /// Column values in text format; nil is SQL NULL.
    case dataRow([[UInt8]?])
    case commandComplete(tag: String)
    case emptyQueryResponse
    case notificationResponse(processID: Int32, channel: String, payload: String)
    case negotiateProtocolVersion(newestMinorVersion: Int32, unrecognizedOptions: [String])
    /// CopyInResponse ('G'), CopyOutResponse ('H') or CopyBothResponse ('W'): overall format and per-column formats.
    case copyResponse(CopyDirection, format: Int8, columnFormats: [Int16])
    case copyData([UInt8])
    case copyDone
}

/// Encoders for the frontend messages sagedev sends. Strings are UTF-8 and may not contain NUL: the protocol
/// ends strings with NUL, so one inside would cut the message short or shift every field after it.
public enum PostgresFrontend {
    /// Protocol 3.0 (major 3, minor 0).
    public static let protocolVersion: Int32 = 196_608
    static let sslRequestCode: Int32 = 80_877_103
    static let cancelRequestCode: Int32 = 80_877_102
    /// PostgreSQL refuses frontend messages over 1 GB; refusing them here gives a clearer error.
    public static let maximumMessageLength = 1 << 30

    /// StartupMessage: user, database, application_name, and client_encoding=UTF8 so that text comes back as UTF-8.
    public static func startupMessage(user: String, database: String, applicationName: String = "sagedev") throws -> [UInt8] {
        try startupMessage(parameters: [("user", user), ("database", database),
                                        ("application_name", applicationName), ("client_encoding", "UTF8")])
    }

    public static func startupMessage(parameters: [(String, String)]) throws -> [UInt8] {
        var body = [UInt8]()
        Bytes.appendInt32(protocolVersion, to: &body)
        for (name, value) in parameters {
            try appendCString(name, what: "startup parameter name", to: &body)
            try appendCString(value, what: "startup parameter \(name)", to: &body)
        }
        body.append(0)
        return try untyped(body)
    }

    /// SSLRequest: the server answers a single byte, 'S' (go ahead with TLS) or 'N'.
    public static func sslRequest() -> [UInt8] {
        var body = [UInt8]()
        Bytes.appendInt32(sslRequestCode, to: &body)
        return (try? untyped(body)) ?? []
    }

    /// CancelRequest, sent on a new connection to stop the query running on another.
    public static func cancelRequest(processID: Int32, secretKey: [UInt8]) -> [UInt8] {
        var body = [UInt8]()
        Bytes.appendInt32(cancelRequestCode, to: &body)
        Bytes.appendInt32(processID, to: &body)
        body += secretKey
        return (try? untyped(body)) ?? []
    }

    /// PasswordMessage with the cleartext password.
    public static func passwordMessage(_ password: String) throws -> [UInt8] {
        var body = [UInt8]()
        try appendCString(password, what: "password", to: &body)
        return try typed(UInt8(ascii: "p"), body)
    }

    /// PasswordMessage for md5 authentication: "md5" + md5hex(md5hex(password + user) + salt).
    public static func md5PasswordMessage(user: String, password: String, salt: [UInt8]) throws -> [UInt8] {
        let inner = MD5.hexDigest(Array(password.utf8) + Array(user.utf8))
        return try passwordMessage("md5" + MD5.hexDigest(Array(inner.utf8) + salt))
    }

    /// SASLInitialResponse: the chosen mechanism and the client-first message.
    public static func saslInitialResponse(mechanism: String, initialResponse: [UInt8]?) throws -> [UInt8] {
        var body = [UInt8]()
        try appendCString(mechanism, what: "SASL mechanism", to: &body)
        if let initialResponse {
            Bytes.appendInt32(Int32(clamping: initialResponse.count), to: &body)
            body += initialResponse
        } else {
            Bytes.appendInt32(-1, to: &body)
        }
        return try typed(UInt8(ascii: "p"), body)
    }

    /// SASLResponse: the next client message of the exchange (SCRAM's client-final).
    public static func saslResponse(_ data: [UInt8]) throws -> [UInt8] {
        try typed(UInt8(ascii: "p"), data)
    }

    /// Query: one or more SQL statements separated by semicolons (the simple query protocol).
    public static func query(_ sql: String) throws -> [UInt8] {
        var body = [UInt8]()
        try appendCString(sql, what: "query", to: &body)
        return try typed(UInt8(ascii: "Q"), body)
    }

    /// CopyFail: abandons a COPY FROM STDIN with a reason the server puts in its error.
    public static func copyFail(_ reason: String) throws -> [UInt8] {
        var body = [UInt8]()
        try appendCString(reason, what: "CopyFail reason", to: &body)
        return try typed(UInt8(ascii: "f"), body)
    }

    public static func terminate() -> [UInt8] { [UInt8(ascii: "X"), 0, 0, 0, 4] }

    // MARK: framing

    static func appendCString(_ s: String, what: String, to out: inout [UInt8]) throws {
        let bytes = Array(s.utf8)
        if bytes.contains(0) {
            throw WireError(.malformed, "the \(what) contains a NUL character, which PostgreSQL's protocol cannot carry; remove it")
        }
        out += bytes
        out.append(0)
    }

    static func typed(_ type: UInt8, _ body: [UInt8]) throws -> [UInt8] {
        guard body.count + 4 <= maximumMessageLength else {
            throw WireError(.tooLarge, "a \(body.count)-byte message is over PostgreSQL's 1 GB limit; split it")
        }
        var out = [UInt8]()
        out.reserveCapacity(body.count + 5)
        out.append(type)
        Bytes.appendInt32(Int32(body.count + 4), to: &out)
        out += body
        return out
    }

    static func untyped(_ body: [UInt8]) throws -> [UInt8] {
        guard body.count + 4 <= 10_000 else {
            throw WireError(.tooLarge, "the startup message would be \(body.count + 4) bytes, over PostgreSQL's 10000-byte limit; shorten the parameters")
        }
        var out = [UInt8]()
        Bytes.appendInt32(Int32(body.count + 4), to: &out)
        return out + body
    }
}
