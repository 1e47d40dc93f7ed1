import SageWire

/// One tool an MCP client may call: its name, what it does, the JSON Schema of its arguments, and the work.
public struct MCPTool: Sendable {
    public var name: String
    public var title: String
    public var description: String
    public var inputSchema: JSONValue
    public var run: @Sendable (_ arguments: JSONValue) -> MCPToolResult

    public init(name: String, title: String, description: String, inputSchema: JSONValue,
                run: @escaping @Sendable (JSONValue) -> MCPToolResult) {
        self.name = name; self.title = title; self.description = description; self.inputSchema = inputSchema; self.run = run
    }

    var listing: JSONValue {
        ["name": .string(name), "title": .string(title), "description": .string(description), "inputSchema": inputSchema]
    }
}

/// What a tool call gives back: text for the model, an optional structured value, and whether it failed (a failed
/// operation is a result with `isError`, carrying the message the CLI prints, not a JSON-RPC error).
public struct MCPToolResult: Sendable, Equatable {
    public var text: String
    public var structured: JSONValue?
    public var isError: Bool
    public init(text: String, structured: JSONValue? = nil, isError: Bool = false) {
        self.text = text; self.structured = structured; self.isError = isError
    }

    var json: JSONValue {
        var o: [String: JSONValue] = ["content": [["type": "text", "text": .string(text)]], "isError": .bool(isError)]
        if let structured, case .object = structured { o["structuredContent"] = structured }
        return .object(o)
    }
}

/// A readable resource (a service's log).
public struct MCPResource: Sendable, Equatable {
    public var uri: String
    public var name: String
    public var description: String
    public var mimeType: String
    public init(uri: String, name: String, description: String, mimeType: String = "text/plain") {
        self.uri = uri; self.name = name; self.description = description; self.mimeType = mimeType
    }
    var listing: JSONValue {
        ["uri": .string(uri), "name": .string(name), "description": .string(description), "mimeType": .string(mimeType)]
    }
}

/// The Model Context Protocol server's logic, without I/O: a line in, the line to answer (if any) out. It speaks
/// the handshake revisions below (the newest by default), and offers tools and resources; the shell (`sagedev mcp`)
/// reads stdin, writes stdout, and supplies the tools.
public struct MCPServer: Sendable {
    /// Newest first: an `initialize` asking for one of these gets it; any other gets the first.
    public static let protocolVersions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
    /// The MCP code for an unknown resource.
    public static let resourceNotFound = -32002

    public var name: String
    public var version: String
    public var instructions: String
    public var tools: [MCPTool]
    public var resources: @Sendable () -> [MCPResource]
    /// The text of a resource, or nil when there is none at that URI.
    public var read: @Sendable (_ uri: String) -> String?
    /// Applied to every string of every answer: takes out secrets (passwords become ****).
    public var scrub: @Sendable (String) -> String

    public init(name: String, version: String, instructions: String, tools: [MCPTool],
                resources: @escaping @Sendable () -> [MCPResource], read: @escaping @Sendable (String) -> String?,
                scrub: @escaping @Sendable (String) -> String = { $0 }) {
        self.name = name; self.version = version; self.instructions = instructions; self.tools = tools
        self.resources = resources; self.read = read; self.scrub = scrub
    }

    /// Answers one framed input line: nil for notifications, responses from the peer and all-notification batches.
    public func answer(_ line: [UInt8]) -> [UInt8]? {
        switch JSONRPC.decode(line) {
        case .unreadable(let e): return JSONRPC.line(JSONRPC.response(id: .null, error: e))
        case .single(let m): return reply(m).map { JSONRPC.line(clean($0)) }
        case .batch(let ms):
            let replies = ms.compactMap(reply)
            return replies.isEmpty ? nil : JSONRPC.line(clean(.array(replies)))
        }
    }

    /// What to write for a line over the size limit.
    public static func tooLong(limit: Int) -> [UInt8] {
        JSONRPC.line(JSONRPC.response(id: .null, error: JSONRPC.ErrorObject(.invalidRequest, "Invalid Request: the line is over \(limit) bytes and was skipped")))
    }

    func reply(_ m: JSONRPC.Message) -> JSONValue? {
        switch m {
        case .response: return nil
        case .invalid(let id, let e): return JSONRPC.response(id: id, error: e)
        case .request(let r):
            let outcome = handle(r)
            guard let id = r.id else { return nil }
            switch outcome {
            case .success(let v): return JSONRPC.response(id: id, result: v)
            case .failure(let e): return JSONRPC.response(id: id, error: e)
            }
        }
    }

    /// One call. Notifications (`notifications/initialized`, `notifications/cancelled`) need no answer.
    public func handle(_ r: JSONRPC.Request) -> Result<JSONValue, JSONRPC.ErrorObject> {
        let params = r.params ?? [:]
        switch r.method {
        case "initialize":
            let asked = params["protocolVersion"]?.string
            let chosen = asked.flatMap { MCPServer.protocolVersions.contains($0) ? $0 : nil } ?? MCPServer.protocolVersions[0]
            return .success([
                "protocolVersion": .string(chosen),
                "capabilities": ["tools": ["listChanged": false], "resources": ["subscribe": false, "listChanged": false]],
                "serverInfo": ["name": .string(name), "title": "sagedev", "version": .string(version)],
                "instructions": .string(instructions),
            ])
        case "ping":
            return .success([:])
        case "tools/list":
            return .success(["tools": .array(tools.map(\.listing))])
        case "tools/call":
            guard let toolName = params["name"]?.string else {
                return .failure(JSONRPC.ErrorObject(.invalidParams, "Invalid params: tools/call needs a \"name\" string"))
            }
            guard let tool = tools.first(where: { $0.name == toolName }) else {
                return .failure(JSONRPC.ErrorObject(.invalidParams, "Unknown tool \"\(toolName.prefix(64))\"; the tools are \(tools.map(\.name).joined(separator: ", "))"))
            }
            let arguments = params["arguments"] ?? [:]
            let problems = JSONSchemaCheck.problems(arguments, against: tool.inputSchema)
            if !problems.isEmpty {
                return .success(MCPToolResult(text: "\(tool.name): \(problems.joined(separator: "; "))", isError: true).json)
            }
            return .success(tool.run(arguments).json)
        case "resources/list":
            return .success(["resources": .array(resources().map(\.listing))])
        case "resources/templates/list":
            return .success(["resourceTemplates": []])
        case "resources/read":
            guard let uri = params["uri"]?.string else {
                return .failure(JSONRPC.ErrorObject(.invalidParams, "Invalid params: resources/read needs a \"uri\" string"))
            }
            guard let text = read(uri) else {
                let known = resources().map(\.uri).joined(separator: ", ")
                return .failure(JSONRPC.ErrorObject(code: MCPServer.resourceNotFound, message: "Resource not found: \(uri.prefix(200)); the resources are \(known)",
                                                    data: ["uri": .string(uri)]))
            }
            return .success(["contents": [["uri": .string(uri), "mimeType": "text/plain", "text": .string(text)]]])
        default:
            if r.method.hasPrefix("notifications/") { return .success(.null) }
            return .failure(JSONRPC.ErrorObject(.methodNotFound, "Method not found: \(r.method.prefix(64))"))
        }
    }

    func clean(_ v: JSONValue) -> JSONValue {
        switch v {
        case .string(let s): return .string(scrub(s))
        case .array(let a): return .array(a.map(clean))
        case .object(let o): return .object(o.mapValues(clean))
        default: return v
        }
    }
}
