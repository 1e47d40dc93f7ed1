import Testing
import Glibc
import Foundation
import SageSystem

/// The example's apps with their real libraries (Express, node-postgres's Pool, node-redis, tsc, esbuild's dev
/// server) under the native runtime, checked from outside with curl, valkey-cli, psql and headless Chromium.
@Suite struct RealAppTests {
    struct Reply { var status: Int; var body: String; var headers: String }

    /// One HTTP request with curl; nil when nothing answered.
    static func request(_ url: String, method: String = "GET", json: String? = nil, origin: String? = nil) -> Reply? {
        var args = ["curl", "-sS", "--max-time", "3", "-D", "-", "-o", "-", "-X", method]
        if let json { args += ["-H", "content-type: application/json", "--data", json] }
        if let origin { args += ["-H", "Origin: \(origin)"] }
        guard let r = try? Subprocess.run(args + [url], deadline: .after(seconds: 6)), r.status.isSuccess else { return nil }
        let text = r.stdoutText
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let headers = String(text[..<split.lowerBound])
        let status = Int(headers.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Reply(status: status, body: String(text[split.upperBound...]), headers: headers.lowercased())
    }

    static func chats(_ p: TestProject, user: Int = 1) -> Reply? {
        request("http://127.0.0.1:\(p.ports.backend)/api/chats?user=\(user)")
    }

    static func psql(_ p: TestProject, _ sql: String) throws -> String {
        let r = try Subprocess.run([try Repo.tool("psql"), "-h", "127.0.0.1", "-p", String(p.ports.postgres), "-U", "sage", "-d", "sage",
                                    "-tA", "-c", sql],
                                   environment: ["PGPASSWORD": p.postgresPassword, "PATH": "/usr/bin:/bin"], deadline: .after(seconds: 10))
        guard r.status.isSuccess else { throw TestFailure("psql: \(r.stderrText)") }
        return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func valkeyCLI(_ p: TestProject, _ args: [String]) throws -> String {
        let r = try Subprocess.run([try Repo.tool("valkey-cli"), "-h", "127.0.0.1", "-p", String(p.ports.valkey)] + args,
                                   environment: ["REDISCLI_AUTH": p.valkeyPassword, "PATH": "/usr/bin:/bin"], deadline: .after(seconds: 10))
        guard r.status.isSuccess else { throw TestFailure("valkey-cli: \(r.stderrText)") }
        return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func healthNamesTheVersionAndChatsAreCachedWithXCache() throws {
        let p = try TestProject()
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let health = try #require(Self.request("http://127.0.0.1:\(p.ports.backend)/health"))
        #expect(health.status == 200)
        #expect(health.body.contains("\"version\":\"1.0.0\""))
        let first = try #require(Self.chats(p))
        #expect(first.status == 200)
        #expect(first.headers.contains("x-cache: miss"))
        #expect(first.body.contains("Analytical engine notes") && first.body.contains("Bernoulli numbers"))
        #expect(!first.body.contains("Compiler ideas"))  // Grace's chat, not Ada's
        #expect(Self.chats(p)?.headers.contains("x-cache: hit") == true)
        let ttl = Int(try Self.valkeyCLI(p, ["TTL", "userChatList:1"])) ?? -1
        #expect((1...30).contains(ttl), "TTL \(ttl)")
        // CORS for the frontend's origin.
        let cors = Self.request("http://127.0.0.1:\(p.ports.backend)/api/chats?user=1", origin: "http://127.0.0.1:\(p.ports.frontend)")
        #expect(cors?.headers.contains("access-control-allow-origin: http://127.0.0.1:\(p.ports.frontend)") == true)
        #expect(Self.request("http://127.0.0.1:\(p.ports.backend)/api/chats?user=1", origin: "https://evil.example")?
            .headers.contains("access-control-allow-origin") == false)
    }

    @Test func postMessagesInsertsARow() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up"]).status == .exited(0))
        let chat = try Self.psql(p, "SELECT id FROM chats WHERE title = 'Bernoulli numbers'")
        let r = try #require(Self.request("http://127.0.0.1:\(p.ports.backend)/api/messages", method: "POST",
                                          json: "{\"chatId\": \(chat), \"content\": \"posted through the API\"}"))
        #expect(r.status == 201, "\(r.body)")
        #expect(try Self.psql(p, "SELECT count(*) FROM messages WHERE content = 'posted through the API' AND chat_id = \(chat)") == "1")
        #expect(Self.request("http://127.0.0.1:\(p.ports.backend)/api/messages", method: "POST", json: "{\"chatId\": 999999, \"content\": \"x\"}")?.status == 400)
    }

    /// After `reset-db --yes`, the live pool serves the seeded rows again within 5 s.
    @Test func resetUnderALivePoolServesTheSeedAgainWithinFiveSeconds() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up"]).status == .exited(0))
        #expect(Self.chats(p)?.status == 200)  // warms the pool and the cache
        _ = try Self.psql(p, "INSERT INTO chats (user_id, title) SELECT id, 'stray chat' FROM users WHERE email = 'ada@example.com'")
        _ = try Self.valkeyCLI(p, ["DEL", "userChatList:1"])
        #expect(Self.chats(p)?.body.contains("stray chat") == true)
        let reset = try p.sagedev(["reset-db", "--yes"])
        #expect(reset.status == .exited(0), "\(reset.stderrText)")
        let done = monotonicNanoseconds()
        var failed = 0
        let served = waitUntil(.after(seconds: 5)) {
            guard let r = Self.chats(p), r.status == 200 else { failed += 1; return false }
            return r.body.contains("Analytical engine notes") && !r.body.contains("stray chat")
        }
        #expect(served, "no seeded rows within 5 s of reset-db (\(failed) failed requests, \(Int(millisecondsSince(done))) ms)")
    }

    /// kill -9 of Valkey: sagedev restarts it, node-redis reconnects, /health is 200 within 10 s, and the cache
    /// works again (a list not cached before: miss, then hit).
    @Test func valkeyKilledHardIsRestartedAndTheRedisClientReconnects() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up"]).status == .exited(0))
        #expect(Self.chats(p)?.status == 200)
        let pid = try #require(p.service(try p.status(), "valkey")["pid"] as? Int)
        let killed = monotonicNanoseconds()
        #expect(kill(Int32(pid), SIGKILL) == 0)
        let healthy = waitUntil(.after(seconds: 10)) {
            Self.request("http://127.0.0.1:\(p.ports.backend)/health")?.status == 200
                && (p.service((try? p.status()) ?? [:], "valkey")["pid"] as? Int).map { $0 != pid } == true
        }
        #expect(healthy, "backend /health not 200 within 10 s of kill -9 of valkey (\(Int(millisecondsSince(killed))) ms)")
        #expect(Self.chats(p, user: 2)?.headers.contains("x-cache: miss") == true)
        #expect(Self.chats(p, user: 2)?.headers.contains("x-cache: hit") == true)
    }

    /// While Valkey is down the backend says which dependency failed (503).
    @Test func healthIs503NamingValkeyWhileItIsStopped() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up"]).status == .exited(0))
        let pid = try #require(p.service(try p.status(), "valkey")["pid"] as? Int)
        // SIGSTOP: the process lives (sagedev does not restart it) but answers nothing.
        #expect(kill(Int32(pid), SIGSTOP) == 0)
        defer { kill(Int32(pid), SIGCONT) }
        var last: Reply?
        #expect(waitUntil(.after(seconds: 15)) {
            last = Self.request("http://127.0.0.1:\(p.ports.backend)/health")
            return last?.status == 503 && last?.body.contains("valkey") == true
        }, "\(String(describing: last))")
        #expect(last?.body.contains("postgres") == false)
    }

    /// A .ts edit goes through tsc and node --watch; sagedev reports the reload, and /health has the new version.
    /// A type error: tsc emits nothing (noEmitOnError), the last good build keeps serving, status shows tsc's message.
    @Test func aTypeScriptEditReloadsAndATypeErrorIsReportedWhileTheLastBuildServes() throws {
        let p = try TestProject(backend: .typescript)
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let version = p.root + "/apps/backend/src/version.ts"
        try FileDescriptor.writeFileAtomically(version, Array("export const VERSION: string = \"2.0.0-ts\";\n".utf8), mode: 0o644)
        let reloaded = p.waitForStatus(.after(seconds: 60)) {
            let r = p.service($0, "backend")["reload"] as? [String: Any]
            return r?["outcome"] as? String == "reloaded" && p.service($0, "backend")["state"] as? String == "healthy"
        }
        #expect(reloaded != nil, "no reload reported: \(p.unmet)")
        #expect((p.service(reloaded ?? [:], "backend")["reload"] as? [String: Any])?["file"] as? String == "apps/backend/src/version.ts")
        #expect(waitUntil(.after(seconds: 10)) { Self.request("http://127.0.0.1:\(p.ports.backend)/health")?.body.contains("2.0.0-ts") == true })

        try FileDescriptor.writeFileAtomically(version, Array("export const VERSION: string = 42;\n".utf8), mode: 0o644)
        let broken = p.waitForStatus(.after(seconds: 60)) {
            ((p.service($0, "backend")["build"] as? [String: Any])?["error"] as? String)?.contains("error TS2322") == true
        }
        #expect(broken != nil, "no build error in status: \(p.unmet)")
        let text = try p.sagedev(["status"]).stdoutText
        #expect(text.contains("build failed: src/version.ts(1,14): error TS2322"), "\(text)")
        #expect(Self.request("http://127.0.0.1:\(p.ports.backend)/health")?.body.contains("2.0.0-ts") == true)
        #expect(p.service(try p.status(), "backend")["state"] as? String == "healthy")

        try FileDescriptor.writeFileAtomically(version, Array("export const VERSION: string = \"3.0.0-ts\";\n".utf8), mode: 0o644)
        #expect(p.waitForStatus(.after(seconds: 60)) { p.service($0, "backend")["build"] == nil } != nil, "build error not cleared")
        #expect(waitUntil(.after(seconds: 20)) { Self.request("http://127.0.0.1:\(p.ports.backend)/health")?.body.contains("3.0.0-ts") == true })
    }

    /// The worker, an extra service without a port: a job pushed on the Valkey list becomes a row in Postgres, and
    /// kill -9 of it means sagedev starts it again (and it goes on taking jobs).
    @Test func theWorkerTurnsAQueuedJobIntoARowAndIsRestartedAfterKill9() throws {
        let p = try TestProject(worker: true)
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        let chat = try Self.psql(p, "SELECT id FROM chats WHERE title = 'Compiler ideas'")
        func rows(_ content: String) -> String? {
            try? Self.psql(p, "SELECT count(*) FROM messages WHERE content = '\(content)' AND role = 'assistant'")
        }
        _ = try Self.valkeyCLI(p, ["LPUSH", "sage:jobs", "{\"chatId\": \(chat), \"content\": \"written by the worker\"}"])
        #expect(waitUntil(.after(seconds: 10)) { rows("written by the worker") == "1" },
                "\(FileDescriptor.readText(p.root + "/.sagedev/logs/worker.log") ?? "")")

        let pid = try #require(p.service(try p.status(), "worker")["pid"] as? Int)
        #expect(kill(-Int32(pid), SIGKILL) == 0)
        let again = p.waitForStatus(.after(seconds: 20)) {
            let w = p.service($0, "worker")
            return w["state"] as? String == "healthy" && (w["pid"] as? Int).map { $0 != pid } == true && (w["restarts"] as? Int ?? 0) >= 1
        }
        #expect(again != nil, "worker not restarted: \(p.unmet)")
        _ = try Self.valkeyCLI(p, ["LPUSH", "sage:jobs", "{\"chatId\": \(chat), \"content\": \"after the restart\"}"])
        #expect(waitUntil(.after(seconds: 10)) { rows("after the restart") == "1" })
        // A job that can never be written goes to the failed list with its reason.
        _ = try Self.valkeyCLI(p, ["LPUSH", "sage:jobs", "not json"])
        #expect(waitUntil(.after(seconds: 10)) { (try? Self.valkeyCLI(p, ["LLEN", "sage:jobs:failed"])) == "1" })
    }

    /// Headless Chromium loads the esbuild-served page: the DOM shows a seeded chat title fetched from the backend.
    @Test func aBrowserShowsTheSeededChatsFromTheBackend() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up"]).status == .exited(0))
        let profile = makeTempDirectory("sagedev-chromium")
        defer { removeTree(profile) }
        var dom = ""
        // The page fetches after load; --timeout lets it finish before the DOM is printed.
        #expect(waitUntil(.after(seconds: 60)) {
            let r = try? Subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)",
                                         "--timeout=3000", "--dump-dom", "http://127.0.0.1:\(p.ports.frontend)/"], deadline: .after(seconds: 30))
            dom = r?.stdoutText ?? ""
            return dom.contains("<li>Analytical engine notes</li>")
        }, "\(dom)")
        #expect(dom.contains("<li>Bernoulli numbers</li>"))
    }

    /// After an edit to the page's source, esbuild rebuilds and its live reload shows the change in the open page.
    @Test func liveReloadShowsAnEditInTheOpenPage() throws {
        let p = try TestProject()
        #expect(try p.sagedev(["up"]).status == .exited(0))
        let profile = makeTempDirectory("sagedev-chromium")
        defer { removeTree(profile) }
        let debugPort = freePort()
        let browser = try Spawner.spawn(SpawnSpec(executable: ProcessEnvironment.which("chromium")!, arguments: [
            "chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)",
            "--remote-debugging-port=\(debugPort)", "http://127.0.0.1:\(p.ports.frontend)/"],
            environment: ProcessEnvironment.current(), stdout: .null, stderr: .null))
        defer { browser.terminate(.standard(graceMilliseconds: 3000)) }
        // The page's title lists what it rendered; the DevTools endpoint lists the open page's title.
        func title() -> String {
            (try? Subprocess.run(["curl", "-sS", "--max-time", "2", "http://127.0.0.1:\(debugPort)/json/list"], deadline: .after(seconds: 5)))?.stdoutText ?? ""
        }
        #expect(waitUntil(.after(seconds: 60)) { title().contains("Sage: ") && title().contains("Analytical engine notes") }, "\(title())")
        let pid = p.service(try p.status(), "frontend")["pid"] as? Int
        let main = p.root + "/apps/frontend/src/main.js"
        let source = try #require(FileDescriptor.readText(main))
        try FileDescriptor.writeFileAtomically(main, Array(source.replacingOccurrences(of: "const heading = \"Sage\";",
                                                                                       with: "const heading = \"Sage live\";").utf8), mode: 0o644)
        #expect(waitUntil(.after(seconds: 30)) { title().contains("Sage live: ") && title().contains("Analytical engine notes") }, "\(title())")
        // esbuild reloads in place: sagedev reports the reload and does not restart the dev server over it.
        let after = p.waitForStatus(.after(seconds: 20)) { ((p.service($0, "frontend")["reload"] as? [String: Any])?["outcome"] as? String) == "reloaded" }
        #expect(after != nil, "\(p.unmet)")
        #expect(p.service(after ?? [:], "frontend")["pid"] as? Int == pid)
        #expect((p.service(after ?? [:], "frontend")["reload"] as? [String: Any])?["action"] as? String == "self")
    }
}
