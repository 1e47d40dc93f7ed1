import Foundation

/// The version of sagedev, shown by `sagedev version` and named when a CLI and a daemon disagree on the protocol.
public let sagedevVersion = "0.1.0"

/// The control socket speaks newline-delimited JSON; every message carries the protocol version `"v"`.
///   request:  {"v":2,"id":7,"cmd":"status","args":{…}}
///   event:    {"v":2,"id":7,"event":"progress"|"step"|"log"|"database-step",…}   (zero or more, while a command runs)
///   response: {"v":2,"id":7,"ok":true,"result":{…}}
///          or {"v":2,"id":7,"ok":false,"sagedev":"0.1.0","error":{"code":"…","message":"…",…}}
/// A request is one `ControlRequest` type (its `command`, its arguments, its `Response`); the daemon registers one
/// handler per type (`Daemon.handle`), and the client sends it with `DaemonClient.send`. A blank line is a
/// keep-alive and gets no reply.
public enum ControlProtocol {
    /// Raised whenever a message's shape changes.
    public static let version = 2
    /// A request line longer than this is refused and the connection closed.
    public static let maxLineBytes = 1 << 20

    /// What a CLI says when the daemon it reached speaks another protocol version.
    public static func mismatchMessage(daemonProtocol: Int, daemonVersion: String?) -> String {
        let daemon = daemonVersion.map { "sagedev \($0)" } ?? "another sagedev"
        return "the daemon runs \(daemon) with control protocol \(daemonProtocol), and this is sagedev \(sagedevVersion) with protocol \(version); run 'sagedev down' then 'sagedev up' to restart the daemon with this sagedev"
    }

    /// What a daemon answers to a request of another protocol version.
    static func unsupportedMessage(_ v: Int) -> String {
        "protocol version \(v) is not supported: this daemon runs sagedev \(sagedevVersion) with control protocol \(version); run the same sagedev as the daemon, or 'sagedev down' then 'sagedev up' to restart it"
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// One line: the JSON of `message` and a newline.
    static func line<T: Encodable>(_ message: T) -> [UInt8] {
        guard let data = try? encoder.encode(message) else {
            return Array("{\"error\":{\"code\":\"internal\",\"message\":\"unencodable reply\"},\"id\":null,\"ok\":false,\"v\":\(version)}\n".utf8)
        }
        return Array(data) + [10]
    }

    static func decoder() -> JSONDecoder { JSONDecoder() }

    public struct DecodeError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Why a line does not decode as `T`, in words for the peer: malformed JSON, not an object, or the field at fault.
    static func explain(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at \"\(p)\""
        }
        switch e {
        case .dataCorrupted(let c) where c.codingPath.isEmpty: return "malformed JSON"
        case .typeMismatch(_, let c) where c.codingPath.isEmpty: return "a message must be a JSON object"
        case .typeMismatch(let t, let c): return "expected \(typeName(t))\(path(c))"
        case .valueNotFound(let t, let c): return "expected \(typeName(t))\(path(c)), found null"
        case .keyNotFound(let k, let c): return "missing \"\(k.stringValue)\"\(path(c))"
        case .dataCorrupted(let c): return "\(c.debugDescription)\(path(c))"
        @unknown default: return "\(error)"
        }
    }

    private static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is String.Type, is ServiceID.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Double.Type: return "a number"
        case is [Any].Type: return "an array"
        default:
            let n = "\(t)"
            return n.hasPrefix("Array") ? "an array" : (n.hasPrefix("Dictionary") ? "an object" : n)
        }
    }
}

// MARK: requests

/// One command of the control protocol: its name on the wire, its arguments (the type's own fields) and its reply.
/// Adding a command is one such type and one `Daemon.handle(_:)` registration.
public protocol ControlRequest: Codable, Sendable {
    associatedtype Response: Codable, Sendable
    static var command: String { get }
}

/// A reply with nothing in it (`"result":{}`).
public struct EmptyResponse: Codable, Sendable, Equatable {
    public init() {}
}

/// What the daemon reads first of every request line, before it knows the command's argument type. Leniently:
/// an id that is not an integer is answered with a null id, and a missing `cmd` is reported as such.
struct RequestHeader: Decodable {
    var v: Int?
    var id: Int?
    var cmd: String?

    enum CodingKeys: String, CodingKey { case v, id, cmd }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        v = try? c.decodeIfPresent(Int.self, forKey: .v)
        id = try? c.decodeIfPresent(Int.self, forKey: .id)
        cmd = try? c.decodeIfPresent(String.self, forKey: .cmd)
    }
}

/// The arguments of a request; absent arguments are an empty object.
struct RequestArguments<R: Decodable>: Decodable {
    var args: R
    enum CodingKeys: String, CodingKey { case args }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let a = try c.decodeIfPresent(R.self, forKey: .args) { args = a } else {
            args = try ControlProtocol.decoder().decode(R.self, from: Data("{}".utf8))
        }
    }
}

struct RequestEnvelope<R: ControlRequest>: Encodable {
    var id: Int
    var args: R
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(ControlProtocol.version, forKey: .v)
        try c.encode(id, forKey: .id)
        try c.encode(R.command, forKey: .cmd)
        try c.encode(args, forKey: .args)
    }
    enum Keys: String, CodingKey { case v, id, cmd, args }
}

// MARK: replies

/// A failed command: a code for programs, a message for the person, and what else explains it.
public struct ControlError: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    public var code: String
    public var message: String
    /// The service that failed (`up`, `restart`).
    public var service: ServiceID?
    /// Its last log lines.
    public var logTail: [String]?
    /// Where a failed SQL file failed (database commands).
    public var sql: SQLErrorLocation?

    public init(code: String, message: String, service: ServiceID? = nil, logTail: [String]? = nil, sql: SQLErrorLocation? = nil) {
        self.code = code; self.message = message; self.service = service; self.logTail = logTail; self.sql = sql
    }
    public var description: String { message }
}

/// A database failure's position: the file, line and column of the statement, and the server's SQLSTATE and hint.
public struct SQLErrorLocation: Codable, Sendable, Equatable {
    public var kind: String
    public var file: String?
    public var line: Int?
    public var column: Int?
    public var sqlState: String?
    public var hint: String?
    public init(kind: String, file: String? = nil, line: Int? = nil, column: Int? = nil, sqlState: String? = nil, hint: String? = nil) {
        self.kind = kind; self.file = file; self.line = line; self.column = column; self.sqlState = sqlState; self.hint = hint
    }
}

struct ReplyEnvelope<T: Encodable>: Encodable {
    var id: Int?
    var result: T?
    var error: ControlError?
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(ControlProtocol.version, forKey: .v)
        if let id { try c.encode(id, forKey: .id) } else { try c.encodeNil(forKey: .id) }
        try c.encode(error == nil, forKey: .ok)
        if let result { try c.encode(result, forKey: .result) }
        if let error {
            try c.encode(error, forKey: .error)
            try c.encode(sagedevVersion, forKey: .sagedev)
        }
    }
    enum Keys: String, CodingKey { case v, id, ok, result, error, sagedev }
}

extension ReplyEnvelope where T == EmptyResponse {
    static func failure(id: Int?, _ code: String, _ message: String) -> ReplyEnvelope {
        ReplyEnvelope(id: id, result: nil, error: ControlError(code: code, message: message))
    }
}

/// What the client reads first of every line: whose it is, which kind, and which protocol version.
struct IncomingHeader: Decodable {
    var v: Int?
    var id: Int?
    var ok: Bool?
    var event: String?
    var sagedev: String?
    enum CodingKeys: String, CodingKey { case v, id, ok, event, sagedev }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        v = try? c.decodeIfPresent(Int.self, forKey: .v)
        id = try? c.decodeIfPresent(Int.self, forKey: .id)
        ok = try? c.decodeIfPresent(Bool.self, forKey: .ok)
        event = try? c.decodeIfPresent(String.self, forKey: .event)
        sagedev = try? c.decodeIfPresent(String.self, forKey: .sagedev)
    }
}

struct IncomingResult<T: Decodable>: Decodable {
    var result: T
    enum CodingKeys: String, CodingKey { case result }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let r = try c.decodeIfPresent(T.self, forKey: .result) { result = r } else {
            result = try ControlProtocol.decoder().decode(T.self, from: Data("{}".utf8))
        }
    }
}

struct IncomingError: Decodable {
    var error: ControlError
}

// MARK: events

/// Something a running command tells its client before its reply.
public enum ControlEvent: Codable, Sendable, Equatable {
    /// A service changed state (`up`, `restart`, `watch`).
    case progress(ProgressEvent)
    /// A step of the stack outside any one service, such as the database job.
    case step(StepEvent)
    /// A log line (`logs`).
    case log(LogEvent)
    /// A timed step of a database command.
    case databaseStep(DatabaseStepEvent)

    enum Kind: String, Codable { case progress, step, log, databaseStep = "database-step" }
    enum Keys: String, CodingKey { case event }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .progress(let e): try c.encode(Kind.progress, forKey: .event); try e.encode(to: encoder)
        case .step(let e): try c.encode(Kind.step, forKey: .event); try e.encode(to: encoder)
        case .log(let e): try c.encode(Kind.log, forKey: .event); try e.encode(to: encoder)
        case .databaseStep(let e): try c.encode(Kind.databaseStep, forKey: .event); try e.encode(to: encoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        switch try c.decode(Kind.self, forKey: .event) {
        case .progress: self = .progress(try ProgressEvent(from: decoder))
        case .step: self = .step(try StepEvent(from: decoder))
        case .log: self = .log(try LogEvent(from: decoder))
        case .databaseStep: self = .databaseStep(try DatabaseStepEvent(from: decoder))
        }
    }
}

public struct ProgressEvent: Codable, Sendable, Equatable {
    public var service: ServiceID
    public var state: ServiceState
    public var reason: String
    public var elapsedMs: Int
    public init(service: ServiceID, state: ServiceState, reason: String, elapsedMs: Int) {
        self.service = service; self.state = state; self.reason = reason; self.elapsedMs = elapsedMs
    }
}

public struct StepEvent: Codable, Sendable, Equatable {
    public var step: String
    public var message: String
    public init(step: String, message: String) { self.step = step; self.message = message }
}

public struct LogEvent: Codable, Sendable, Equatable {
    public var service: String
    public var time: Double
    public var line: String
    public init(service: String, time: Double, line: String) { self.service = service; self.time = time; self.line = line }
}

public struct DatabaseStepEvent: Codable, Sendable, Equatable {
    public var operation: String
    public var name: String
    public var ms: Double
    public var detail: String
    public var message: String
    public init(_ s: DatabaseStep) {
        operation = s.operation; name = s.name; ms = (s.milliseconds * 10).rounded() / 10; detail = s.detail; message = s.line
    }
}

struct EventEnvelope: Encodable {
    var id: Int?
    var event: ControlEvent
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(ControlProtocol.version, forKey: .v)
        if let id { try c.encode(id, forKey: .id) } else { try c.encodeNil(forKey: .id) }
        try event.encode(to: encoder)
    }
    enum Keys: String, CodingKey { case v, id }
}
