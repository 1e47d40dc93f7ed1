import Testing
import Glibc
import Foundation
import Dispatch
import SageSystem
@testable import SageCore

/// psql with the project's .env credentials, over TCP (the real client).
private func psql(_ p: TestProject, _ sql: String, database: String = "sage") throws -> CompletedProcess {
    try Subprocess.run([try Repo.tool("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", String(p.ports.postgres), "-U", "sage", "-d", database, "-c", sql],
                       environment: ["PGPASSWORD": p.postgresPassword, "PATH": "/usr/bin:/bin"], deadline: .after(seconds: 60))
}

private func value(_ p: TestProject, _ sql: String, database: String = "sage") throws -> String {
    let r = try psql(p, sql, database: database)
    guard r.status.isSuccess else { throw TestFailure("psql failed: \(r.stderrText)") }
    return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

private func up(_ p: TestProject, environment: [String: String] = [:]) throws {
    let r = try p.sagedev(["up", "--no-watch"], environment: environment)
    guard r.status == .exited(0) else { throw TestFailure("up failed (\(r.status)): \(r.stdoutText)\n\(r.stderrText)") }
}

/// The databases sagedev keeps beside the app database for a moment only: a swap's incoming and old databases.
private func leftovers(_ p: TestProject) throws -> String {
    try value(p, "SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE 'sage\\_\\_sagedev\\_old\\_%' OR datname IN ('sage__sagedev_incoming', 'sage__sagedev_template_new', 'sage__sagedev_restore')", database: "postgres")
}

private func readyCopies(_ status: [String: Any], _ p: TestProject) -> [String: Any] {
    p.service(status, "postgres")["readyCopies"] as? [String: Any] ?? [:]
}

/// reset-db in a test loop: the swap that keeps the apps running, its crash safety, the ready copies and clones,
/// end to end through the real binary, daemon, PostgreSQL 18 and Valkey 8.
@Suite(.serialized) struct ResetLoopTests {
    @Test func resetKeepsTheAppsRunningAndServesTheSeed() throws {
        let p = try TestProject(worker: true)
        try up(p)
        let backend = try #require(p.pidRecord("backend")?.pid)
        let worker = try #require(p.pidRecord("worker")?.pid)
        let restartsBefore = p.service(try p.status(), "backend")["restarts"] as? Int
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('stray@example.com', 'Stray')")

        let r = try p.sagedev(["reset-db", "--yes"])
        #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
        for step in ["take copy", "block connections", "swap", "flush cache", "drop old database", "kept running: backend"] {
            #expect(r.stdoutText.contains(step), "missing \(step): \(r.stdoutText)")
        }
        #expect(!r.stdoutText.contains("stop apps"), "\(r.stdoutText)")
        #expect(r.stdoutText.contains("worker"), "the worker is named among the apps kept running: \(r.stdoutText)")
        #expect(p.pidRecord("backend")?.pid == backend, "the backend was restarted")
        #expect(p.pidRecord("worker")?.pid == worker, "the worker was restarted")
        // The real clients' pools reconnect on their next query: the backend serves the seeded chats, and the
        // worker writes a job's row into the new database.
        #expect(waitUntil(.after(seconds: 10)) { RealAppTests.chats(p)?.status == 200 && RealAppTests.chats(p)?.body.contains("Bernoulli numbers") == true },
                "\(RealAppTests.chats(p).map { "\($0.status) \($0.body)" } ?? "no answer")")
        let chat = try value(p, "SELECT id FROM chats WHERE title = 'Compiler ideas'")
        _ = try RealAppTests.valkeyCLI(p, ["LPUSH", "sage:jobs", "{\"chatId\": \(chat), \"content\": \"after the reset\"}"])
        #expect(waitUntil(.after(seconds: 10)) { (try? value(p, "SELECT count(*) FROM messages WHERE content = 'after the reset'")) == "1" },
                "\(FileDescriptor.readText(p.root + "/.sagedev/logs/worker.log")?.suffix(1500) ?? "")")
        let after = try p.status()
        #expect(p.service(after, "backend")["state"] as? String == "healthy")
        #expect(p.service(after, "backend")["restarts"] as? Int == restartsBefore)
        #expect(try value(p, "SELECT count(*) FROM users WHERE email = 'stray@example.com'") == "0")
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
        #expect(try value(p, "SELECT count(*) FROM messages WHERE content <> 'after the reset'") == "5")
        // The old database is dropped in the background.
        #expect(waitUntil(.after(seconds: 60)) { (try? leftovers(p)) == "" }, "\((try? leftovers(p)) ?? "")")
    }

    @Test func restartAppsStopsAndStartsTheServicesThatUseTheDatabase() throws {
        let p = try TestProject(worker: true)
        try up(p)
        let backend = try #require(p.pidRecord("backend")?.pid)
        let worker = try #require(p.pidRecord("worker")?.pid)
        let frontend = try #require(p.pidRecord("frontend")?.pid)
        let r = try p.sagedev(["reset-db", "--yes", "--restart-apps"])
        #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(r.stdoutText.contains("stop apps") && r.stdoutText.contains("stopped backend, worker"), "\(r.stdoutText)")
        #expect(r.stdoutText.contains("start apps") && r.stdoutText.contains("backend, worker healthy"), "\(r.stdoutText)")
        #expect(p.pidRecord("backend")?.pid != backend, "the backend was not restarted")
        #expect(p.pidRecord("worker")?.pid != worker, "the worker was not restarted")
        // The frontend holds no database connection of its own: it keeps running.
        #expect(p.pidRecord("frontend")?.pid == frontend)
        #expect(p.service(try p.status(), "backend")["state"] as? String == "healthy")
    }

    @Test func killingTheDaemonAtEachStepLeavesTheOldOrTheNewDatabaseAndUpCleansUp() throws {
        let p = try TestProject()
        for (i, step) in ResetFaults.steps.enumerated() {
            try up(p, environment: ["SAGEDEV_FAULT_RESET_STEP": step])
            if i == 0 { #expect(waitUntil(.after(seconds: 60)) { (try? leftovers(p)) == "" }) }
            _ = try value(p, "INSERT INTO users (email, name) VALUES ('stray-\(step)@example.com', 'Stray')")
            let daemon = FileLock.holderPid(path: p.root + "/.sagedev/run/daemon.lock")
            let r = try p.sagedev(["reset-db", "--yes"])
            #expect(r.status == .exited(1), "\(step): \(r.stdoutText)\n\(r.stderrText)")
            #expect(waitUntil(.after(seconds: 30)) { daemon.map { !ProcFS.isAlive(pid: $0, startTime: nil) } ?? true }, "\(step): the daemon lives")

            // The next daemon finishes or rolls back the swap and drops what it left.
            try up(p)
            let clean = waitUntil(.after(seconds: 60)) {
                (try? leftovers(p)) == "" && (try? value(p, "SELECT datallowconn FROM pg_database WHERE datname = 'sage'", database: "postgres")) == "t"
            }
            #expect(clean, "\(step): \((try? leftovers(p)) ?? "?")")
            let stray = try value(p, "SELECT count(*) FROM users WHERE email = 'stray-\(step)@example.com'")
            let swapped = ["swap", "flush-cache", "drop-old"].contains(step)
            #expect(stray == (swapped ? "0" : "1"), "\(step): the database is neither the old nor the new one")
            #expect(try value(p, "SELECT count(*) FROM messages WHERE content <> 'after the reset'") == "5")
            #expect(p.service(try p.status(), "backend")["state"] as? String == "healthy")
            #expect(try p.sagedev(["down"]).status == .exited(0))
        }
    }

    @Test func killingPostgresAtEachStepLeavesTheOldOrTheNewDatabaseAndItIsCleanedUp() throws {
        let p = try TestProject()
        for step in ResetFaults.steps {
            try up(p, environment: ["SAGEDEV_FAULT_RESET_STEP": step + ":postgres"])
            _ = try value(p, "INSERT INTO users (email, name) VALUES ('stray-\(step)@example.com', 'Stray')")
            let postgres = p.pidRecord("postgres")?.pid
            _ = try p.sagedev(["reset-db", "--yes"])
            #expect(waitUntil(.after(seconds: 30)) { postgres.map { !ProcFS.isAlive(pid: $0, startTime: nil) } ?? true }, "\(step): postgres lives")
            // The supervisor restarts postgres; the daemon then finishes or rolls back the swap.
            try up(p)
            let clean = waitUntil(.after(seconds: 90)) {
                (try? leftovers(p)) == "" && (try? value(p, "SELECT datallowconn FROM pg_database WHERE datname = 'sage'", database: "postgres")) == "t"
            }
            #expect(clean, "\(step): \((try? leftovers(p)) ?? "?")")
            let stray = try value(p, "SELECT count(*) FROM users WHERE email = 'stray-\(step)@example.com'")
            #expect(["0", "1"].contains(stray))
            if ["take-copy", "block-connections"].contains(step) { #expect(stray == "1", "\(step): not the old database") }
            if ["flush-cache", "drop-old"].contains(step) { #expect(stray == "0", "\(step): not the new database") }
            #expect(try value(p, "SELECT count(*) FROM messages WHERE content <> 'after the reset'") == "5")
            #expect(try p.sagedev(["down"]).status == .exited(0))
        }
    }

    @Test func withoutRoomOnDiskResetsCopyAtResetTimeWithAWarning() throws {
        let p = try TestProject(processEnvironment: ["SAGEDEV_FAULT_FREE_BYTES": "1000"])
        try up(p)
        let short = p.waitForStatus(.after(seconds: 60)) { (readyCopies($0, p)["problem"] as? String)?.contains("disk space") == true }
        #expect(short != nil, "\(p.unmet)")
        if let short { #expect(readyCopies(short, p)["ready"] as? Int == 0) }
        #expect(try p.sagedev(["status"]).stdoutText.contains("not enough free disk space"))
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('stray@example.com', 'Stray')")
        let r = try p.sagedev(["reset-db", "--yes"])
        #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(r.stdoutText.contains("at reset time") && r.stdoutText.contains("warning") && r.stdoutText.contains("disk space"), "\(r.stdoutText)")
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
    }

    @Test func statusShowsTheReadyCopies() throws {
        let p = try TestProject()
        try up(p)
        let full = p.waitForStatus(.after(seconds: 120)) { readyCopies($0, p)["ready"] as? Int == 2 }
        #expect(full != nil, "\(p.unmet)")
        if let full { #expect(readyCopies(full, p)["target"] as? Int == 2) }
        #expect(try p.sagedev(["status"]).stdoutText.contains("2 of 2 ready copies of the reset template"))
        let r = try p.sagedev(["reset-db", "--yes", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any]
        #expect(report?["fileCopyMethod"] as? String == "spare", "\(r.stdoutText)")
    }

    /// The daemon's maintenance sessions, by backend pid.
    private func daemonSessions(_ p: TestProject) throws -> String {
        try value(p, "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity WHERE application_name = 'sagedev' AND datname = 'postgres'",
                  database: "postgres")
    }

    /// After a reset: the ready copies made again and the old database dropped (every background session is back).
    private func settled(_ p: TestProject) -> Bool {
        p.waitForStatus(.after(seconds: 120)) { readyCopies($0, p)["ready"] as? Int == 2 } != nil
            && waitUntil(.after(seconds: 60)) { (try? leftovers(p)) == "" }
    }

    /// A stack up, reset once and settled: the maintenance sessions the daemon then keeps.
    private func afterOneReset() throws -> (TestProject, String) {
        let p = try TestProject()
        try up(p)
        #expect(try p.sagedev(["reset-db", "--yes"]).status == .exited(0))
        #expect(settled(p), "\(p.unmet)")
        return (p, try daemonSessions(p))
    }

    @Test func resetsInARowReuseTheDaemonsMaintenanceSessions() throws {
        let (p, first) = try afterOneReset()
        #expect(!first.isEmpty)
        let r = try p.sagedev(["reset-db", "--yes"])
        #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(settled(p), "\(p.unmet)")
        #expect(try daemonSessions(p) == first, "the second reset opened sessions of its own")
    }

    @Test func aResetAfterItsKeptSessionsWereEndedConnectsAgain() throws {
        let (p, kept) = try afterOneReset()
        // Postgres stays up; only the sessions the daemon keeps are ended (as an administrator or a pooler might).
        #expect(try value(p, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'sagedev'", database: "postgres") != "0")
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('stray@example.com', 'Stray')")
        let r = try p.sagedev(["reset-db", "--yes"])
        #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM users WHERE email = 'stray@example.com'") == "0")
        #expect(try daemonSessions(p) != kept)
    }

    @Test func withNoReadyCopiesResetsCopyAtResetTime() throws {
        let p = try TestProject(extraEnv: ["SAGEDEV_RESET_SPARES": "0"])
        try up(p)
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('stray@example.com', 'Stray')")
        for _ in 0..<2 {
            let r = try p.sagedev(["reset-db", "--yes"])
            #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
            #expect(r.stdoutText.contains("at reset time (SAGEDEV_RESET_SPARES=0"), "\(r.stdoutText)")
        }
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
        let s = try p.status()
        #expect(readyCopies(s, p)["target"] as? Int == 0 && readyCopies(s, p)["ready"] as? Int == 0, "\(p.service(s, "postgres"))")
        #expect(try value(p, "SELECT count(*) FROM pg_database WHERE datname LIKE 'sage\\_\\_sagedev\\_spare%'", database: "postgres") == "0")
    }

    @Test func tenConcurrentClonesHoldTheSeedAndAreIsolated() throws {
        let p = try TestProject()
        try up(p)
        let results = Locked<[CompletedProcess]>([])
        let group = DispatchGroup()
        for i in 0..<10 {
            group.enter()
            DispatchQueue.global().async {
                if let r = try? p.sagedev(["db", "clone", "w\(i)", "--json"], timeout: 240) { results.withValue { $0.append(r) } }
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 300) == .success)
        var databases: [String] = []
        for r in results.current {
            #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
            guard let o = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any],
                  let db = o["database"] as? String, let url = o["url"] as? String else { continue }
            #expect(db.hasPrefix("sage__clone_w"))
            // The URL works as it is, with the real client.
            let viaURL = try Subprocess.run([try Repo.tool("psql"), url, "-X", "-A", "-t", "-c", "SELECT count(*) FROM users"],
                                            environment: ["PATH": "/usr/bin:/bin"], deadline: .after(seconds: 30))
            #expect(viaURL.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "3", "\(viaURL.stderrText)")
            databases.append(db)
        }
        #expect(databases.count == 10)
        databases.sort()
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('only-here@example.com', 'Only')", database: databases[0])
        for db in databases.dropFirst() { #expect(try value(p, "SELECT count(*) FROM users", database: db) == "3", "\(db)") }
        #expect(try value(p, "SELECT count(*) FROM users", database: databases[0]) == "4")
        #expect(try value(p, "SELECT count(*) FROM users") == "3")

        let list = try p.sagedev(["db", "clones", "--json"])
        let listed = (try JSONSerialization.jsonObject(with: Data(list.stdout)) as? [String: Any])?["clones"] as? [[String: Any]] ?? []
        #expect(listed.count == 10, "\(list.stdoutText)")
        #expect(try p.sagedev(["db", "clone", "w0"]).status == .exited(1))  // taken
        let bad = try p.sagedev(["db", "clone", "Bad Name!"])
        #expect(bad.status == .exited(64), "\(bad.stderrText)")
        #expect(bad.stderrText.contains("invalid clone name"))
        let drop = try p.sagedev(["db", "drop-clone", "--all"])
        #expect(drop.status == .exited(0), "\(drop.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM pg_database WHERE datname LIKE 'sage\\_\\_clone\\_%'", database: "postgres") == "0")
        // status counts them again after the drop (its figures are at most one 2 s refresh old), not 30 s later.
        #expect(p.waitForStatus(.after(seconds: 10)) { p.service($0, "postgres")["clones"] as? Int == 0 } != nil,
                "status still counts the dropped clones: \(p.unmet)")
        #expect(try p.sagedev(["db", "drop-clone"]).status == .exited(64))
    }
}
