import Testing
import SageCore
import SageSystem

@Suite struct DevServerAdapterTests {
    @Test func autoDetectsFromTheDevCommandFirst() {
        let d = DevServerAdapter.detect(setting: .auto, devCommand: "esbuild src/main.js --bundle --watch=forever",
                                        packageJSON: #"{"devDependencies":{"vite":"^5"}}"#)
        #expect(d.rule?.framework == .esbuild)
        #expect(d.description == "esbuild (auto: the dev command runs esbuild)")
    }

    @Test func autoFollowsTheScriptANpmCommandRuns() {
        let d = DevServerAdapter.detect(setting: .auto, devCommand: "npm run dev", packageJSON: #"{"scripts":{"dev":"vite --open"}}"#)
        #expect(d.rule?.framework == .vite)
        #expect(d.reason == "package.json's dev script runs vite")
    }

    @Test func autoFallsBackToPackageJSONDependencies() {
        let d = DevServerAdapter.detect(setting: .auto, devCommand: "npm run start:dev",
                                        packageJSON: #"{"scripts":{"start:dev":"node x.js"},"dependencies":{"@nestjs/core":"^10"}}"#)
        #expect(d.rule?.framework == .nest)
        #expect(d.reason == "package.json depends on @nestjs/core")
    }

    @Test func tscInWatchModeIsNestsShape() {
        let d = DevServerAdapter.detect(setting: .auto, devCommand: "tsc -p . --watch & exec node --watch dist/server.js", packageJSON: nil)
        #expect(d.rule?.framework == .nest)
        // A one-shot tsc is not a watcher.
        #expect(DevServerAdapter.detect(setting: .auto, devCommand: "tsc -p . && node dist/server.js", packageJSON: nil).rule == nil)
    }

    @Test func unknownAndNoneAddNothing() {
        let d = DevServerAdapter.detect(setting: .auto, devCommand: "python3 -m http.server", packageJSON: nil)
        #expect(d.rule == nil)
        #expect(d.description.hasPrefix("none (auto: no known dev server"))
        #expect(DevServerAdapter.detect(setting: .none, devCommand: "vite", packageJSON: nil).rule == nil)
    }

    @Test func viteGetsHostPortAndStrictPortAfterNpmsSeparator() {
        #expect(DevServerAdapter.command("npm run dev", rule: .vite) == #"npm run dev -- --host "$HOST" --port "$PORT" --strictPort"#)
        #expect(DevServerAdapter.command("vite", rule: .vite) == #"vite --host "$HOST" --port "$PORT" --strictPort"#)
        // An option the command already gives is left as it is.
        #expect(DevServerAdapter.command("vite --port 4000", rule: .vite) == #"vite --port 4000 --host "$HOST" --strictPort"#)
    }

    @Test func esbuildGetsServeAndTheBackendURLButServedirIsNotServe() {
        let c = DevServerAdapter.command("esbuild src/main.js --servedir=public", rule: .esbuild)
        #expect(c == #"esbuild src/main.js --servedir=public --serve="$HOST:$PORT" --define:process.env.BACKEND_PUBLIC_URL="\"$BACKEND_PUBLIC_URL\"""#)
        #expect(DevServerAdapter.command("esbuild a.js --serve=1.2.3.4:80", rule: .esbuild).contains("--serve=\"$HOST") == false)
    }

    @Test func aCompoundCommandIsLeftAlone() {
        #expect(DevServerAdapter.command("npm i && vite", rule: .vite) == "npm i && vite")
    }

    @Test func viteAPIURLComesFromTheBackendsPublicURLUnlessSet() {
        let env = ["BACKEND_PUBLIC_URL": "http://127.0.0.1:3000"]
        #expect(DevServerAdapter.environment(env, rule: .vite)["VITE_API_URL"] == "http://127.0.0.1:3000")
        #expect(DevServerAdapter.environment(env.merging(["VITE_API_URL": "http://api"]) { a, _ in a }, rule: .vite)["VITE_API_URL"] == "http://api")
        #expect(DevServerAdapter.environment(env, rule: .esbuild)["VITE_API_URL"] == nil)
    }

    @Test func theShellExpandsTheAddedOptions() throws {
        let command = DevServerAdapter.command("printf '%s\\n'", rule: .vite)
        let r = try Subprocess.run(["/bin/sh", "-c", command], environment: ["HOST": "127.0.0.1", "PORT": "4321", "PATH": "/usr/bin:/bin"],
                                   deadline: .after(seconds: 10))
        #expect(r.stdoutText == "--host\n127.0.0.1\n--port\n4321\n--strictPort\n")
    }

    @Test func tscBuildReportsBecomeEvents() {
        var log = BuildLog(report: DevServerRule.nest.build!)
        #expect(log.received("10:00:00 PM - File change detected. Starting incremental compilation...") == nil)
        #expect(log.received("src/version.ts(2,14): error TS2322: Type 'number' is not assignable to type 'string'.") == nil)
        #expect(log.received("10:00:01 PM - Found 1 error. Watching for file changes.")
                == .failed("src/version.ts(2,14): error TS2322: Type 'number' is not assignable to type 'string'.", errors: 1))
        #expect(log.received("10:00:02 PM - Found 0 errors. Watching for file changes.") == .succeeded)
    }
}

@Suite struct ListenDiagnosisTests {
    func socket(_ address: String, _ port: Int) -> ProcFS.ListeningSocket {
        ProcFS.parseListeningSockets("h\n 0: \(address == "::1" ? "00000000000000000000000001000000" : address == "0.0.0.0" ? "00000000" : "0100007F"):\(String(port, radix: 16, uppercase: true)) 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 77 1\n")[0]
    }

    @Test func aViteLikeServerOnIPv6AndItsOwnPortIsNamedWithTheKeyAndBothFixes() {
        let m = ListenDiagnosis.message(service: "frontend", host: "127.0.0.1", port: 45173, portKey: "FRONTEND_PORT",
                                        listening: [socket("::1", 5173)], rule: nil)
        #expect(m == "frontend listens on [::1]:5173, not 127.0.0.1:45173 (FRONTEND_PORT): the dev server ignores PORT and bound ::1; pass --host 127.0.0.1 --port $PORT --strictPort (Vite) or set FRONTEND_PORT=5173")
    }

    @Test func theRightPortOnTheWrongAddressNamesOnlyTheAddress() {
        let m = ListenDiagnosis.message(service: "frontend", host: "127.0.0.1", port: 5173, portKey: "FRONTEND_PORT",
                                        listening: [socket("::1", 5173)], rule: .vite)
        #expect(m == "frontend listens on [::1]:5173, not 127.0.0.1:5173 (FRONTEND_PORT): the dev server bound ::1; pass --host 127.0.0.1 --port $PORT --strictPort (Vite)")
    }

    @Test func theFixIsTheFrameworks() {
        let m = ListenDiagnosis.message(service: "frontend", host: "127.0.0.1", port: 45173, portKey: "FRONTEND_PORT",
                                        listening: [socket("0.0.0.0", 8000)], rule: .esbuild)
        #expect(m == "frontend listens on 0.0.0.0:8000, not 127.0.0.1:45173 (FRONTEND_PORT): the dev server ignores PORT; pass --serve=127.0.0.1:$PORT (esbuild) or set FRONTEND_PORT=8000")
    }

    @Test func listeningOnNothingSaysSo() {
        let m = ListenDiagnosis.message(service: "backend", host: "127.0.0.1", port: 3000, portKey: "BACKEND_PORT", listening: [], rule: nil)
        #expect(m?.hasPrefix("backend listens on no TCP port, not 127.0.0.1:3000 (BACKEND_PORT)") == true)
    }

    @Test func listeningWhereProbedIsNoDiagnosis() {
        #expect(ListenDiagnosis.message(service: "backend", host: "127.0.0.1", port: 3000, portKey: "BACKEND_PORT",
                                        listening: [socket("127.0.0.1", 3000)], rule: nil) == nil)
        #expect(ListenDiagnosis.message(service: "backend", host: "127.0.0.1", port: 3000, portKey: "BACKEND_PORT",
                                        listening: [socket("0.0.0.0", 3000)], rule: nil) == nil)
    }
}
