import Testing
@testable import SageCore

/// What `status` and a failed `up` show of a crashed service's log.
@Suite struct CrashExcerptTests {
    /// Node's report of a module that throws at load, then node --watch's and tsc's own lines: 29 lines in all, the
    /// headline 22 lines from the end (so a plain 20-line tail showed frames only).
    static let nodeCrash: [String] = [
        "[12:00:01 AM] File change detected. Starting incremental compilation...",
        "[12:00:01 AM] Found 0 errors. Watching for file changes.",
        "Restarting 'dist/server.js'",
        "/tmp/p/apps/backend/dist/version.js:4",
        "exports.VERSION = (() => { throw new Error(\"broken on purpose\"); })();",
        "                           ^",
        "",
        "Error: broken on purpose",
    ] + (0..<11).map { "    at Module.frame\($0) (node:internal/modules/cjs/loader:\(1000 + $0):14)" } + [
        "",
        "Node.js v20.20.2",
        "Failed running 'dist/server.js'",
        "[12:00:02 AM] File change detected. Starting incremental compilation...",
        "[12:00:02 AM] Found 0 errors. Watching for file changes.",
        "[12:00:03 AM] File change detected. Starting incremental compilation...",
        "[12:00:03 AM] Found 0 errors. Watching for file changes.",
        "Restarting 'dist/server.js'",
        "sagedev: process exited with exited(1)",
        "sagedev: the dev server did not come back",
    ]

    @Test func aHeadlinePushedOutOfTheNewestLinesIsKeptWithTheFramesFolded() {
        #expect(!Self.nodeCrash.suffix(20).contains("Error: broken on purpose"), "the fixture must push the headline out")
        let excerpt = CrashExcerpt.lines(Self.nodeCrash)
        #expect(excerpt.first == "Error: broken on purpose")
        #expect(excerpt.last == "sagedev: the dev server did not come back")
        #expect(excerpt.filter { $0.hasPrefix("    at ") }.count == 4)
        #expect(excerpt.contains("    … 7 more frames"))
    }

    @Test func theNewestLinesStayWhenTheyHoldTheHeadline() {
        let log = (0..<30).map { "line \($0)" } + ["TypeError: x is not a function", "    at f (a.js:1:1)"]
        #expect(CrashExcerpt.lines(log) == Array(log.suffix(20)))
    }

    @Test func aLogWithoutAnErrorGivesItsNewestLines() {
        let log = (0..<50).map { "line \($0)" }
        #expect(CrashExcerpt.lines(log) == Array(log.suffix(20)))
    }

    @Test func headlinesOfSeveralRuntimes() {
        for h in ["Error: boom", "TypeError: x", "  RangeError: y", "java.lang.IllegalStateException: z", "panic: oops",
                  "Traceback (most recent call last):", "Fatal error: Index out of range", "ZeroDivisionError: division by zero"] {
            #expect(CrashExcerpt.isHeadline(h), "\(h)")
        }
        for l in ["listening on http://127.0.0.1:3000", "error count: 0 files", "[12:00:01 AM] Found 0 errors.", "    at f (a.js:1:1)"] {
            #expect(!CrashExcerpt.isHeadline(l), "\(l)")
        }
    }
}
