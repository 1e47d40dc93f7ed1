/// JSON-RPC 2.0 messages (https://www.jsonrpc.org/specification), decoded from and encoded to single lines of
/// JSON. Pure: no I/O. The MCP server uses it over stdio.
public enum JSONRPC {
    public static let version = "2.0"

    /// A request id: a number or a string; `null` only where the peer sent it or the id could not be read.
    public enum ID: Hashable, Sendable, CustomStringConvertible {
        case int(Int)
        case string(String)
        case null

        public var json: JSONValue {
            switch self { case .int(let i): return .int(i); case .string(let s): return .string(s); case .null: return .null }
        }
        public var description: String { json.json }
    }

    /// The error codes the specification reserves.
    public enum Code: Int, Sendable {
        case parseError = -32700
        case invalidRequest = -32600
        case methodNotFound = -32601
        case invalidParams = -32602
        case internalError = -32603
    }

    public struct ErrorObject: Equatable, Sendable, Error {
        public var code: Int
        public var message: String
        public var data: JSONValue?
        public init(_ code: Code, _ message: String, data: JSONValue? = nil) { self.code = code.rawValue; self.message = message; self.data = data }
        public init(code: Int, message: String, data: JSONValue? = nil) { self.code = code; self.message = message; self.data = data }

        public var json: JSONValue {
            var o: [String: JSONValue] = ["code": .int(code), "message": .string(message)]
            if let data { o["data"] = data }
            return .object(o)
        }
    }

    /// A call: with an id it is a request and gets a response; without one it is a notification and gets none.
    public struct Request: Equatable, Sendable {
        public var id: ID?
        public var method: String
        /// An object (named) or an array (positional); nil when absent.
        public var params: JSONValue?
        public init(id: ID?, method: String, params: JSONValue? = nil) { self.id = id; self.method = method; self.params = params }
        public var isNotification: Bool { id == nil }
    }

    /// One decoded element: a call, a response from the peer (to a request of ours), or something that is not a
    /// valid message, with the id to answer it under.
    public enum Message: Equatable, Sendable {
        case request(Request)
        case response(id: ID, result: JSONValue?, error: ErrorObject?)
        case invalid(id: ID, ErrorObject)
    }

    /// What a line holds: one message, a batch, or text that is not JSON at all.
    public enum Line: Equatable, Sendable {
        case single(Message)
        case batch([Message])
        /// Not JSON (-32700), or an empty batch (-32600): answered with one error and a null id.
        case unreadable(ErrorObject)
    }

    /// Decodes one line (without its newline).
    public static func decode<C: Collection>(_ bytes: C) -> Line where C.Element == UInt8 {
        guard let value = JSONValue.parse(bytes) else { return .unreadable(ErrorObject(.parseError, "Parse error: the line is not JSON")) }
        if case .array(let elements) = value {
            guard !elements.isEmpty else { return .unreadable(ErrorObject(.invalidRequest, "Invalid Request: an empty batch")) }
            return .batch(elements.map(message))
        }
        return .single(message(value))
    }

    /// Reads one element of a line as a message, checking the shape the specification requires.
    public static func message(_ value: JSONValue) -> Message {
        guard case .object(let o) = value else {
            return .invalid(id: .null, ErrorObject(.invalidRequest, "Invalid Request: a message must be a JSON object"))
        }
        var id: ID?
        switch o["id"] {
        case nil: id = nil
        case .int(let i)?: id = .int(i)
        case .string(let s)?: id = .string(s)
        case .null?: id = .null
        case .double(let d)? where d == d.rounded() && abs(d) < 1e15: id = .int(Int(d))
        default:
            return .invalid(id: .null, ErrorObject(.invalidRequest, "Invalid Request: \"id\" must be a string or a number"))
        }
        guard o["jsonrpc"] == .string(version) else {
            return .invalid(id: id ?? .null, ErrorObject(.invalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\""))
        }
        if let m = o["method"] {
            guard case .string(let method) = m else {
                return .invalid(id: id ?? .null, ErrorObject(.invalidRequest, "Invalid Request: \"method\" must be a string"))
            }
            let params = o["params"]
            switch params {
            case nil, .object?, .array?: break
            default: return .invalid(id: id ?? .null, ErrorObject(.invalidRequest, "Invalid Request: \"params\" must be an object or an array"))
            }
            return .request(Request(id: id, method: method, params: params))
        }
        if o["result"] != nil || o["error"] != nil, let id {
            var error: ErrorObject?
            if let e = o["error"], let code = e["code"]?.int { error = ErrorObject(code: code, message: e["message"]?.string ?? "", data: e["data"]) }
            return .response(id: id, result: o["result"], error: error)
        }
        return .invalid(id: id ?? .null, ErrorObject(.invalidRequest, "Invalid Request: a request needs a \"method\" string"))
    }

    /// A successful response.
    public static func response(id: ID, result: JSONValue) -> JSONValue {
        ["jsonrpc": .string(version), "id": id.json, "result": result]
    }

    /// An error response.
    public static func response(id: ID, error: ErrorObject) -> JSONValue {
        ["jsonrpc": .string(version), "id": id.json, "error": error.json]
    }

    /// A notification from us to the peer.
    public static func notification(_ method: String, params: JSONValue? = nil) -> JSONValue {
        var o: [String: JSONValue] = ["jsonrpc": .string(version), "method": .string(method)]
        if let params { o["params"] = params }
        return .object(o)
    }

    /// One line on the wire: the JSON and a newline.
    public static func line(_ value: JSONValue) -> [UInt8] { value.jsonBytes + [10] }
}

/// Splits a byte stream into lines of at most `limit` bytes, incrementally: bytes may arrive split anywhere. A line
/// over the limit is dropped as it arrives (its bytes are never all held) and reported once, so one huge line
/// cannot exhaust memory or end the session.
public struct JSONRPCLineFramer: Sendable {
    public enum Item: Equatable, Sendable {
        case line([UInt8])
        /// A line longer than the limit was skipped (up to and including its newline).
        case tooLong
    }

    public let limit: Int
    private var buffer: [UInt8] = []
    private var skipping = false

    public init(limit: Int = 1 << 20) { self.limit = limit }

    /// Adds bytes; returns the items they complete, in order. Blank lines (keep-alives) yield nothing.
    public mutating func append<C: Collection>(_ bytes: C) -> [Item] where C.Element == UInt8 {
        var out: [Item] = []
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let nl = bytes[start...].firstIndex(of: 10)
            let chunk = bytes[start..<(nl ?? bytes.endIndex)]
            if skipping {
                if nl != nil { skipping = false }
            } else if buffer.count + chunk.count > limit {
                buffer = []
                out.append(.tooLong)
                skipping = nl == nil
            } else {
                buffer += chunk
                if nl != nil {
                    var line = buffer
                    buffer = []
                    if line.last == 13 { line.removeLast() }
                    if !line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { out.append(.line(line)) }
                }
            }
            guard let nl else { break }
            start = bytes.index(after: nl)
        }
        return out
    }

    /// At end of input: the last line when it had no newline.
    public mutating func finish() -> [Item] {
        defer { buffer = []; skipping = false }
        if skipping || buffer.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return [] }
        return [.line(buffer)]
    }
}
