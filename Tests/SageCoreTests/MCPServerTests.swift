import Testing
import SageWire
@testable import SageCore

/// The MCP server's logic with fake tools: negotiation, listing, calls, argument checks, resources, secrets.
@Suite struct MCPServerTests {
    let server = MCPServer(
        name: "sagedev", version: "0.0.1", instructions: "test",
        tools: [MCPTool(name: "echo", title: "Echo", description: "echoes",
                        inputSchema: ["type": "object", "required": ["say"], "additionalProperties": false,
                                      "properties": ["say": ["type": "string"], "times": ["type": "integer", "minimum": 1]]]) { a in
            let say = a["say"]?.string ?? ""
            return say == "fail" ? MCPToolResult(text: "it failed", isError: true) : MCPToolResult(text: say + " hunter2")
        }],
        resources: { [MCPResource(uri: "sagedev://logs/backend", name: "backend log", description: "log")] },
        read: { $0 == "sagedev://logs/backend" ? "listening" : nil },
        scrub: { $0.replacingOccurrences(of: "hunter2", with: "****") })

    func call(_ line: String) -> JSONValue? { server.answer(Array(line.utf8)).flatMap { JSONValue.parse($0) } }

    @Test func initializeNegotiatesTheVersion() {
        let asked = call(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#)
        #expect(asked?["result"]?["protocolVersion"] == "2025-06-18")
        let unknown = call(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2099-01-01"}}"#)
        #expect(unknown?["result"]?["protocolVersion"]?.string == MCPServer.protocolVersions[0])
        #expect(unknown?["result"]?["capabilities"]?["tools"] != nil)
    }

    @Test func toolsAreListedWithTheirSchemas() {
        let tools = call(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)?["result"]?["tools"]?.array
        #expect(tools?.first?["name"] == "echo")
        #expect(tools?.first?["inputSchema"]?["required"] == ["say"])
    }

    @Test func badArgumentsAreAToolErrorNamingTheProblem() {
        let r = call(#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"times":0,"loud":true}}}"#)?["result"]
        #expect(r?["isError"] == .bool(true))
        let text = r?["content"]?.array?.first?["text"]?.string ?? ""
        #expect(text.contains("\"say\" is required") && text.contains("\"times\" must be at least 1") && text.contains("unknown argument \"loud\""), "\(text)")
    }

    @Test func aFailingOperationIsAResultWithIsError() {
        let r = call(#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"say":"fail"}}}"#)?["result"]
        #expect(r?["isError"] == .bool(true) && r?["content"]?.array?.first?["text"] == "it failed")
    }

    @Test func secretsAreScrubbedFromEveryAnswer() {
        let line = server.answer(Array(#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"say":"hi"}}}"#.utf8))!
        let text = String(decoding: line, as: UTF8.self)
        #expect(!text.contains("hunter2") && text.contains("hi ****"))
    }

    @Test func unknownToolsMethodsAndResourcesAreJSONRPCErrors() {
        #expect(call(#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}"#)?["error"]?["code"] == -32602)
        #expect(call(#"{"jsonrpc":"2.0","id":7,"method":"resources/write"}"#)?["error"]?["code"] == -32601)
        #expect(call(#"{"jsonrpc":"2.0","id":8,"method":"resources/read","params":{"uri":"sagedev://logs/x"}}"#)?["error"]?["code"]?.int == MCPServer.resourceNotFound)
        #expect(call(#"{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"sagedev://logs/backend"}}"#)?["result"]?["contents"]?.array?.first?["text"] == "listening")
    }

    @Test func notificationsAndAllNotificationBatchesGetNoAnswer() {
        #expect(server.answer(Array(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.utf8)) == nil)
        #expect(server.answer(Array(#"[{"jsonrpc":"2.0","method":"notifications/initialized"}]"#.utf8)) == nil)
        let batch = call(#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},{"foo":1}]"#)
        #expect(batch?.array?.count == 2)
    }
}
