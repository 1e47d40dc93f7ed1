import Testing
import Foundation
import Glibc
import SageSystem

/// `sagedev mcp` driven by the official MCP Python SDK (installed by scripts/bootstrap.sh) and by hand-written
/// JSON-RPC, against the example stack.
@Suite struct MCPTests {
    static let python = Repo.root + "/.sagedev/mcp-venv/bin/python"

    /// The SDK's ClientSession over stdio: every result as the JSON the server sent (model_dump by alias).
    static let client = """
    import asyncio, json, os, sys
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    def dump(x):
        return x.model_dump(mode="json", by_alias=True, exclude_none=True)

    async def main():
        params = StdioServerParameters(command=sys.argv[1], args=["mcp"], cwd=sys.argv[2], env=dict(os.environ))
        out = {}
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                out["initialize"] = dump(await s.initialize())
                out["tools"] = dump(await s.list_tools())
                out["status"] = dump(await s.call_tool("status", {}))
                out["logs"] = dump(await s.call_tool("logs", {"service": "backend", "grep": "listening"}))
                out["restart"] = dump(await s.call_tool("restart", {"services": ["backend"]}))
                out["status_after"] = dump(await s.call_tool("status", {}))
                out["bad"] = dump(await s.call_tool("logs", {"tail": "many"}))
                out["env"] = dump(await s.call_tool("env", {}))
                out["env_backend"] = dump(await s.call_tool("env", {"service": "backend"}))
                out["env_unknown"] = dump(await s.call_tool("env", {"service": "nope"}))
                out["clone"] = dump(await s.call_tool("db_clone", {"name": "agent1"}))
                out["clone_bad"] = dump(await s.call_tool("db_clone", {"name": "Not A Name"}))
                out["drop"] = dump(await s.call_tool("db_drop_clone", {"name": "agent1"}))
                out["drop_missing"] = dump(await s.call_tool("db_drop_clone", {"name": "agent1"}))
                out["drop_neither"] = dump(await s.call_tool("db_drop_clone", {}))
                out["keep"] = dump(await s.call_tool("db_clone", {"name": "kept"}))
                out["drop_dashes"] = dump(await s.call_tool("db_drop_clone", {"name": "--all"}))
                out["drop_kept"] = dump(await s.call_tool("db_drop_clone", {"name": "kept"}))
                out["resources"] = dump(await s.list_resources())
                out["resource"] = dump(await s.read_resource("sagedev://logs/backend"))
                await s.send_ping()
        print(json.dumps(out))

    asyncio.run(main())
    """

    func environment(_ p: TestProject) -> [String: String] {
        var env = ProcessEnvironment.current()
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "SAGEDEV_PROJECT_DIR")
        return env
    }

    func text(_ result: JSONValue?) -> String {
        (result?["content"]?.array ?? []).compactMap { $0["text"]?.string }.joined(separator: "\n")
    }

    func backend(_ status: JSONValue?) -> JSONValue? {
        status?["structuredContent"]?["services"]?.array?.first { $0["name"]?.string == "backend" }
    }

    @Test func theOfficialSDKDrivesTheStack() throws {
        let p = try TestProject()
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let run = try Subprocess.run([Self.python, "-c", Self.client, SagedevBinary.path, p.root], environment: environment(p),
                                     workingDirectory: p.root, deadline: .after(seconds: 240))
        #expect(run.status == .exited(0), "\(run.stderrText.suffix(3000))")
        let out = try #require(try? JSONValue.parse(run.stdoutText), "\(run.stdoutText.prefix(2000)) \(run.stderrText.suffix(2000))")

        #expect(out["initialize"]?["protocolVersion"]?.string == "2025-11-25")
        #expect(out["initialize"]?["serverInfo"]?["name"]?.string == "sagedev")

        let tools = out["tools"]?["tools"]?.array ?? []
        let names = Set(tools.compactMap { $0["name"]?.string })
        #expect(names.isSuperset(of: ["status", "logs", "restart", "reset_db", "wait", "env", "db_clone", "db_drop_clone"]), "\(names)")
        #expect(tools.allSatisfy { $0["inputSchema"]?["type"]?.string == "object" })
        #expect(tools.first { $0["name"]?.string == "logs" }?["inputSchema"]?["required"]?.array?.contains(.string("service")) == true)

        let services = out["status"]?["structuredContent"]?["services"]?.array ?? []
        #expect(services.map { $0["name"]?.string ?? "?" } == ["postgres", "valkey", "backend", "frontend"])
        #expect(services.allSatisfy { $0["state"]?.string == "healthy" }, "\(text(out["status"]))")
        #expect(out["status"]?["isError"]?.bool == false)

        #expect(text(out["logs"]).contains("listening on http://"), "\(text(out["logs"]))")

        #expect(out["restart"]?["isError"]?.bool == false, "\(text(out["restart"]))")
        let before = try #require(backend(out["status"])?["pid"]?.int)
        let after = try #require(backend(out["status_after"])?["pid"]?.int)
        #expect(before != after)
        #expect(backend(out["status_after"])?["state"]?.string == "healthy")

        #expect(out["bad"]?["isError"]?.bool == true)
        #expect(text(out["bad"]).contains("\"service\" is required") && text(out["bad"]).contains("\"tail\" must be an integer"), "\(text(out["bad"]))")

        #expect(text(out["env"]).contains("DATABASE_URL=postgres://sage:****@"), "\(text(out["env"]))")
        // The tool prints what `sagedev env --format json` prints (the same code), redacted.
        let cliEnv = try p.sagedev(["env", "--format", "json"])
        #expect(out["env"]?["structuredContent"] == (try? JSONValue.parse(cliEnv.stdoutText)), "\(cliEnv.stdoutText)")
        let backendEnv = out["env_backend"]?["structuredContent"]
        #expect(backendEnv?["PORT"]?.string == String(p.ports.backend), "\(text(out["env_backend"]))")
        #expect(backendEnv?["DATABASE_URL"]?.string?.contains(":****@") == true)
        #expect(out["env_unknown"]?["isError"]?.bool == true)
        #expect(text(out["env_unknown"]).contains("unknown service \"nope\""), "\(text(out["env_unknown"]))")

        // db_clone makes a database a test run can use at once; db_drop_clone removes it; failures are results.
        #expect(out["clone"]?["isError"]?.bool == false, "\(text(out["clone"]))")
        let database = try #require(out["clone"]?["structuredContent"]?["database"]?.string)
        #expect(out["clone"]?["structuredContent"]?["url"]?.string?.contains(":****@") == true, "\(text(out["clone"]))")
        #expect(text(out["clone"]).contains(database))
        #expect(out["clone_bad"]?["isError"]?.bool == true)
        #expect(text(out["clone_bad"]).contains("invalid clone name"), "\(text(out["clone_bad"]))")
        #expect(out["drop"]?["isError"]?.bool == false, "\(text(out["drop"]))")
        #expect(out["drop_missing"]?["isError"]?.bool == true, "\(text(out["drop_missing"]))")
        #expect(out["drop_neither"]?["isError"]?.bool == true)
        // A name that looks like an option is a (bad) name: it does not drop every clone.
        #expect(out["keep"]?["isError"]?.bool == false, "\(text(out["keep"]))")
        #expect(out["drop_dashes"]?["isError"]?.bool == true, "\(text(out["drop_dashes"]))")
        #expect(out["drop_kept"]?["isError"]?.bool == false, "the clone \"kept\" was dropped by the \"--all\" name: \(text(out["drop_kept"]))")
        let gone = try Subprocess.run([try Repo.tool("psql"), "-h", "127.0.0.1", "-p", String(p.ports.postgres), "-U", "sage", "-d", "sage",
                                       "-tAc", "SELECT count(*) FROM pg_database WHERE datname = '\(database)'"],
                                      environment: ["PGPASSWORD": p.postgresPassword, "PATH": "/usr/bin:/bin"], deadline: .after(seconds: 20))
        #expect(gone.stdoutText == "0\n", "\(gone.stdoutText) \(gone.stderrText)")
        #expect((out["resources"]?["resources"]?.array ?? []).contains { $0["uri"]?.string == "sagedev://logs/backend" })
        let resourceText = out["resource"]?["contents"]?.array?.first?["text"]?.string ?? ""
        #expect(resourceText.contains("listening on"))

        // No password anywhere in what the server said.
        for secret in [p.postgresPassword, p.valkeyPassword, "pg-pass%3Bwith%2Codd%2Achars%21", "pg-pass%3Bwith"] {
            #expect(!run.stdoutText.contains(secret), "a password appears in an MCP response")
        }
    }

    /// Garbage, a missing id, an unknown method, a 2 MiB line and an empty batch each get their JSON-RPC error, and
    /// the server keeps answering; a stopped stack's status says it is stopped and starts nothing.
    @Test func malformedJSONRPCGetsErrorsAndTheServerStaysAlive() throws {
        let p = try TestProject()
        var input = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"1999-01-01\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}\n".utf8)
        input += Array("this is not json\n".utf8)
        input += Array("{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\",\"params\":{},\"idx\":2}\n".utf8)       // no id: a notification, no answer
        input += Array("{\"jsonrpc\":\"2.0\",\"params\":{},\"id\":3}\n".utf8)                               // no method
        input += Array("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"frobnicate\"}\n".utf8)
        input += [UInt8](repeating: UInt8(ascii: "x"), count: 2 << 20) + [10]
        input += Array("[]\n".utf8)
        input += Array("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"nope\"}}\n".utf8)
        input += Array("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"status\",\"arguments\":{}}}\n".utf8)
        input += Array("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n".utf8)
        let r = try Subprocess.run([SagedevBinary.path, "mcp"], environment: environment(p), workingDirectory: p.root,
                                   input: input, deadline: .after(seconds: 60))
        #expect(r.status == .exited(0), "\(r.stderrText)")
        let answers = r.stdoutText.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        func answer(_ id: Int) -> JSONValue? { answers.first { $0["id"]?.int == id } }
        func code(_ v: JSONValue?) -> Int? { v?["error"]?["code"]?.int }
        #expect(answers.count == 9, "\(r.stdoutText)")
        #expect(answer(1)?["result"]?["protocolVersion"]?.string == "2025-11-25")
        let nullIDCodes = answers.filter { $0["id"] == .null }.compactMap(code).sorted()
        #expect(nullIDCodes == [-32700, -32600, -32600], "\(r.stdoutText)")  // garbage; the 2 MiB line; the empty batch
        #expect(code(answer(3)) == -32600)
        #expect(code(answer(4)) == -32601)
        #expect(code(answer(5)) == -32602)
        #expect(answer(6)?["result"]?["structuredContent"]?["running"]?.bool == false)
        let stoppedText = answer(6)?["result"]?["content"]?.array?.first?["text"]?.string ?? ""
        #expect(stoppedText.contains("stopped"))
        #expect(answer(7)?["result"] == .object([:]))
        #expect(DaemonLauncherProbe.noDaemon(p))
    }
}
