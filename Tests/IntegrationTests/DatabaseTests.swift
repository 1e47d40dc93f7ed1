import Testing
import Glibc
import Foundation
import Dispatch
import SageSystem
import SageWire
@testable import SageCore

/// psql with the project's .env credentials, over TCP (the real client).
private func psql(_ p: TestProject, _ sql: String, database: String = "sage") throws -> CompletedProcess {
    try Subprocess.run([try Repo.tool("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", String(p.ports.postgres), "-U", "sage", "-d", database, "-c", sql],
                       environment: ["PGPASSWORD": p.postgresPassword, "PATH": "/usr/bin:/bin"], deadline: .after(seconds: 60))
}

private func value(_ p: TestProject, _ sql: String) throws -> String {
    let r = try psql(p, sql)
    guard r.status.isSuccess else { throw TestFailure("psql failed: \(r.stderrText)") }
    return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

private func valkey(_ p: TestProject, _ args: [String]) throws -> String {
    try Subprocess.run([try Repo.tool("valkey-cli"), "-p", String(p.ports.valkey), "--no-auth-warning", "-a", p.valkeyPassword] + args,
                       deadline: .after(seconds: 10)).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// `up`; `watch: false` keeps the hot-reload watcher from applying migration files the moment a test writes them.
private func up(_ p: TestProject, watch: Bool = true) throws {
    let r = try p.sagedev(watch ? ["up"] : ["up", "--no-watch"])
    guard r.status == .exited(0) else { throw TestFailure("up failed (\(r.status)): \(r.stdoutText)\n\(r.stderrText)") }
}

private func write(_ path: String, _ text: String) throws {
    try FileDescriptor.writeFileAtomically(path, Array(text.utf8), mode: 0o644)
}

/// A three-file seed set whose third file has a syntax error on line 7.
private let brokenThirdSeed = """
    -- Third seed: adds a user, then breaks.
    INSERT INTO users (email, name) VALUES ('third@example.com', 'Third');

    INSERT INTO users (email, name)
    VALUES ('fourth@example.com', 'Fourth');

    SELEC * FROM users;
    """

/// End to end through the real binary, daemon, PostgreSQL 18 and Valkey 8, with the example stack's files.
@Suite(.serialized) struct DatabaseTests {
    @Test func resetDropsRowsKeepsSeedsAndComesFromTheTemplate() throws {
        let p = try TestProject()
        try up(p)
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
        #expect(try value(p, "SELECT count(*) FROM pg_database WHERE datname = 'sage__sagedev_template'") == "1")
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('scratch@example.com', 'Scratch')")
        #expect(try valkey(p, ["SET", "cached", "1"]) == "OK")
        let backendBefore = p.pidRecord("backend")?.pid

        let first = try p.sagedev(["reset-db", "--yes", "--restart-apps"])
        #expect(first.status == .exited(0), "\(first.stdoutText)\n\(first.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM users WHERE email = 'scratch@example.com'") == "0")
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
        #expect(try value(p, "SELECT count(*) FROM messages") == "5")
        #expect(try valkey(p, ["EXISTS", "cached"]) == "0", "FLUSHALL did not run")
        for step in ["stop apps", "take copy", "block connections", "swap", "flush cache", "drop old database", "start apps"] {
            #expect(first.stdoutText.contains(step), "missing step \(step): \(first.stdoutText)")
        }
        #expect(first.stdoutText.contains(" ms"))
        #expect(p.pidRecord("backend")?.pid != backendBefore, "the backend was not restarted")
        #expect(p.service(try p.status(), "backend")["state"] as? String == "healthy")

        // Again, keeping the cache: the second reset comes from the template and the log says so.
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('again@example.com', 'Again')")
        #expect(try valkey(p, ["SET", "kept", "1"]) == "OK")
        let second = try p.sagedev(["reset-db", "--yes", "--keep-cache"])
        #expect(second.status == .exited(0), "\(second.stderrText)")
        #expect(second.stdoutText.contains("from template sage__sagedev_template"), "\(second.stdoutText)")
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
        #expect(try valkey(p, ["EXISTS", "kept"]) == "1")
        let log = FileDescriptor.readText(p.root + "/.sagedev/logs/database.log") ?? ""
        let resets = log.split(separator: "\n").filter { $0.hasPrefix("reset-db: take copy: ") && $0.contains("sage__sagedev_template") }
        #expect(resets.count == 2, "\(log)")

        // Without a terminal and without --yes it refuses with exit 64 and changes nothing.
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('stays@example.com', 'Stays')")
        let refused = try p.sagedev(["reset-db"])
        #expect(refused.status == .exited(64), "\(refused.stderrText)")
        #expect(refused.stderrText.contains("--yes"))
        #expect(try value(p, "SELECT count(*) FROM users") == "4")

        // A seed file change makes the template stale: the next reset replays and refreshes it, the one after clones.
        try write(p.root + "/db/seeds/004_more.sql", "INSERT INTO users (email, name) VALUES ('new@example.com', 'New');\n")
        let stale = try p.sagedev(["reset-db", "--yes"])
        #expect(stale.status == .exited(0), "\(stale.stderrText)")
        #expect(stale.stdoutText.contains("replaying migrations and seeds") && stale.stdoutText.contains("refresh template"), "\(stale.stdoutText)")
        #expect(try value(p, "SELECT count(*) FROM users") == "4")
        let fresh = try p.sagedev(["reset-db", "--yes", "--no-seed"])
        #expect(fresh.status == .exited(0), "\(fresh.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM users") == "0")
        let cloned = try p.sagedev(["reset-db", "--yes"])
        #expect(cloned.stdoutText.contains("from template"), "\(cloned.stdoutText)")
        #expect(try value(p, "SELECT count(*) FROM users") == "4")
    }

    @Test func aWarmUpRunsItsDatabaseStepOnTheSessionOfTheCheckThatFoundPostgresReady() throws {
        let p = try TestProject()
        try up(p, watch: false)
        #expect(try p.sagedev(["down"]).status == .exited(0))
        try up(p, watch: false)
        let log = FileDescriptor.readText(p.root + "/.sagedev/logs/database.log") ?? ""
        #expect(log.contains("up: runs on the session of the check that found postgres ready"), "\(log)")
    }

    @Test func postgresStartedAloneKeepsNoSessionOnTheAppDatabase() throws {
        let p = try TestProject()
        let r = try p.sagedev(["up", "--no-watch", "postgres"])
        #expect(r.status == .exited(0), "\(r.stderrText)")
        // The check that found postgres ready kept its session; with no database step to take it, the recovery
        // does, and closes it: a session left on the app database would block the next swap or template copy.
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'sage' AND application_name = 'sagedev'"
        #expect(waitUntil(.after(seconds: 20)) { (try? value(p, sql)) == "0" }, "\((try? value(p, sql)) ?? "?") sagedev sessions on sage")
    }

    @Test func theSaltPostgresGaveIsLeftForTheNextDaemon() throws {
        let p = try TestProject()
        let r = try p.sagedev(["up", "--no-watch", "postgres"])
        #expect(r.status == .exited(0), "\(r.stderrText)")
        // pg_authid holds SCRAM-SHA-256$<iterations>:<base64 salt>$<stored key>:<server key>.
        let verifier = try value(p, "SELECT rolpassword FROM pg_authid WHERE rolname = current_user")
        let fields = verifier.split(separator: "$")
        let head = try #require(fields.count == 3 ? fields[1].split(separator: ":") : nil, "\(verifier)")
        let salt = try #require(Base64.decode(String(head[1])))
        let hint = SCRAMSaltHint(path: p.root + "/.sagedev/run/postgres.scram")
        #expect(waitUntil(.after(seconds: 20)) { hint.load() != nil }, "no hint at \(hint.path)")
        #expect(hint.load() == SCRAMSaltHint.Parameters(salt: salt, iterations: Int(head[0]) ?? -1))
    }

    @Test func resetSucceedsWhileAClientHoldsAnOpenTransaction() throws {
        let p = try TestProject()
        try up(p)
        let client = try Spawner.spawn(SpawnSpec(
            executable: try Repo.tool("psql"),
            arguments: [try Repo.tool("psql"), "-X", "-q", "-h", "127.0.0.1", "-p", String(p.ports.postgres), "-U", "sage", "-d", "sage",
                        "-v", "application_name=holder"],
            environment: ["PGPASSWORD": p.postgresPassword, "PATH": "/usr/bin:/bin", "PGAPPNAME": "holder"],
            stdin: .pipe, stdout: .null, stderr: .null))
        defer { client.closeStdin(); client.terminate(.standard(graceMilliseconds: 2000)) }
        let sql = "BEGIN; INSERT INTO users (email, name) VALUES ('open@example.com', 'Open'); LOCK TABLE users IN ACCESS EXCLUSIVE MODE;\n"
        let fd = try #require(client.stdinFD)
        #expect(sql.withCString { Glibc.write(fd, $0, strlen($0)) } > 0)
        let holding = waitUntil(.after(seconds: 30)) {
            (try? value(p, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holder' AND state = 'idle in transaction'")) == "1"
        }
        #expect(holding, "the client never held its transaction open")

        let r = try p.sagedev(["reset-db", "--yes"], timeout: 120)
        #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holder'") == "0")
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
    }

    @Test func concurrentResetsAreSerialisedAndBothSucceed() throws {
        let p = try TestProject()
        try up(p)
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('scratch@example.com', 'Scratch')")
        // Hold the reset lock so that both resets are surely in flight at once, then let them go.
        let held = try FileLock.acquire(path: p.root + "/.sagedev/run/reset.lock", deadline: .after(seconds: 10))
        let logPath = p.root + "/.sagedev/logs/database.log"
        func waiting() -> Int {
            (FileDescriptor.readText(logPath) ?? "").components(separatedBy: "waiting for another database operation").count - 1
        }
        let waitingBefore = waiting()
        let results = Locked<[CompletedProcess]>([])
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                if let r = try? p.sagedev(["reset-db", "--yes"], timeout: 240) { results.withValue { $0.append(r) } }
                group.leave()
            }
        }
        #expect(waitUntil(.after(seconds: 60)) { waiting() - waitingBefore == 2 }, "both resets should be waiting for the lock")
        held.release()
        #expect(group.wait(timeout: .now() + 300) == .success)
        let rs = results.current
        #expect(rs.count == 2)
        for r in rs {
            #expect(r.status == .exited(0), "\(r.stdoutText)\n\(r.stderrText)")
            #expect(r.stdoutText.contains("waited for another database operation"), "\(r.stdoutText)")
        }
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
        #expect(try value(p, "SELECT count(*) FROM messages") == "5")
        // Once the background work is done: only the app database, its template and the two ready copies of it.
        let settled = waitUntil(.after(seconds: 120)) {
            (try? value(p, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'sage%'"))
                == "sage,sage__sagedev_spare_1,sage__sagedev_spare_2,sage__sagedev_template"
        }
        #expect(settled, "\((try? value(p, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")) ?? "")")
        let healthy = p.waitForStatus(.after(seconds: 60)) { p.service($0, "backend")["state"] as? String == "healthy" }
        #expect(healthy != nil)
        let log = FileDescriptor.readText(p.root + "/.sagedev/logs/database.log") ?? ""
        // Serialised: the second reset takes its copy after the first one's swap.
        let lines = log.split(separator: "\n").filter { $0.hasPrefix("reset-db: take copy") || $0.hasPrefix("reset-db: swap") }
        #expect(lines.map { $0.hasPrefix("reset-db: take") ? "t" : "s" }.joined() == "tsts", "\(lines)")
    }

    @Test func failingSeedFileStopsUpNamingFileLineAndSQLState() throws {
        let p = try TestProject()
        try write(p.root + "/db/seeds/003_messages.sql", brokenThirdSeed)
        let r = try p.sagedev(["up"])
        #expect(r.status == .exited(1))
        let out = r.stdoutText + r.stderrText
        #expect(out.contains("003_messages.sql"), "\(out)")
        #expect(out.contains("line 7"), "\(out)")
        #expect(out.contains("42601"), "\(out)")
        #expect(out.contains("SELEC * FROM users"), "\(out)")
        // Files 1 and 2 are in; nothing of file 3.
        #expect(try value(p, "SELECT count(*) FROM users") == "3")
        #expect(try value(p, "SELECT count(*) FROM chats") == "3")
        #expect(try value(p, "SELECT count(*) FROM users WHERE email IN ('third@example.com', 'fourth@example.com')") == "0")
        #expect(try value(p, "SELECT string_agg(name, ',' ORDER BY name) FROM sagedev_seeds WHERE kind = 'file'") == "001_users.sql,002_chats.sql")
        // The backend never started.
        #expect(p.pidRecord("backend") == nil)

        // Fixed, `up` resumes at the failed file.
        try write(p.root + "/db/seeds/003_messages.sql", brokenThirdSeed.replacingOccurrences(of: "SELEC *", with: "SELECT *"))
        try up(p)
        #expect(try value(p, "SELECT count(*) FROM users") == "5")
        #expect(try value(p, "SELECT count(*) FROM sagedev_seeds WHERE kind = 'complete'") == "1")
    }

    @Test func editedMigrationIsDetected() throws {
        let p = try TestProject()
        try up(p, watch: false)
        let path = p.root + "/db/migrations/002_chats.sql"
        try write(path, (FileDescriptor.readText(path) ?? "") + "\nALTER TABLE chats ADD COLUMN pinned boolean;\n")
        let r = try p.sagedev(["migrate"])
        #expect(r.status == .exited(1))
        #expect(r.stderrText.contains("002_chats.sql") && r.stderrText.contains("edited"), "\(r.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'chats' AND column_name = 'pinned'") == "0")
        // `up` of a fresh daemon refuses too.
        #expect(try p.sagedev(["down"]).status == .exited(0))
        let again = try p.sagedev(["up", "--no-watch"])
        #expect(again.status == .exited(1))
        #expect((again.stdoutText + again.stderrText).contains("002_chats.sql"))
    }

    @Test func failedMigrateRestoresTheSnapshotAndKeepsThreeAutomaticOnes() throws {
        let p = try TestProject()
        try up(p, watch: false)
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('dev@example.com', 'Dev data')")
        let schemaBefore = try value(p, "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name) FROM information_schema.columns WHERE table_schema = 'public'")
        try write(p.root + "/db/migrations/004_tags.sql", "CREATE TABLE tags (id bigint PRIMARY KEY);\n")
        try write(p.root + "/db/migrations/005_broken.sql", "ALTER TABLE users ADD COLUMN nickname text;\nINSERT INTO no_such_table VALUES (1);\n")
        let r = try p.sagedev(["migrate"])
        #expect(r.status == .exited(1), "\(r.stdoutText)")
        let out = r.stdoutText + r.stderrText
        #expect(out.contains("005_broken.sql") && out.contains("line 2, column 13") && out.contains("42P01"), "\(out)")
        #expect(out.contains("restored to snapshot auto-"), "\(out)")
        // Schema and data as before: 004 (committed before 005 failed) is gone again.
        #expect(try value(p, "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name) FROM information_schema.columns WHERE table_schema = 'public'") == schemaBefore)
        #expect(try value(p, "SELECT count(*) FROM sagedev_migrations") == "3")
        #expect(try value(p, "SELECT count(*) FROM users WHERE email = 'dev@example.com'") == "1")
        #expect(p.service(try p.status(), "backend")["state"] as? String == "healthy")

        // Fixed: it applies, and only the last 3 automatic snapshots stay.
        try write(p.root + "/db/migrations/005_broken.sql", "ALTER TABLE users ADD COLUMN nickname text;\n")
        for (i, n) in ["006", "007", "008"].enumerated() {
            if i > 0 { try write(p.root + "/db/migrations/\(n)_t.sql", "CREATE TABLE t\(n) ();\n") }
            let ok = try p.sagedev(["migrate"])
            #expect(ok.status == .exited(0), "\(ok.stdoutText)\n\(ok.stderrText)")
        }
        #expect(try value(p, "SELECT count(*) FROM sagedev_migrations") == "7")
        let list = try p.sagedev(["db", "snapshots", "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(list.stdout)) as? [String: Any]
        let autos = (obj?["snapshots"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "auto" }
        #expect(autos.count == 3, "\(list.stdoutText)")
        #expect(try p.sagedev(["migrate"]).stdoutText.contains("Nothing to migrate"))
    }

    @Test func migrateAndSeedCommandsRunInTheBackendContext() throws {
        // The commands are scripts in the project, run in the backend directory with DATABASE_URL from the daemon.
        let p = try TestProject(extraEnv: ["SAGEDEV_MIGRATE_COMMAND": "\"sh ../../db/migrate.sh\"",
                                           "SAGEDEV_SEED_COMMAND": "\"sh ../../db/seed.sh\""])
        let psqlPath = try Repo.tool("psql")
        try write(p.root + "/db/migrate.sh", """
            echo "migrating in $(pwd)"
            exec "\(psqlPath)" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLE IF NOT EXISTS cmd_migrated (n int)"
            """)
        try write(p.root + "/db/seed.sh", """
            exec "\(psqlPath)" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO cmd_migrated VALUES (7)"
            """)
        try up(p, watch: false)
        #expect(try value(p, "SELECT string_agg(n::text, ',') FROM cmd_migrated") == "7")
        #expect(try value(p, "SELECT count(*) FROM sagedev_seeds WHERE kind = 'command'") == "1")
        #expect((FileDescriptor.readText(p.root + "/.sagedev/logs/backend.log") ?? "").contains("migrating in \(p.root)/apps/backend"))
        // A reset from the template carries what the commands made.
        _ = try value(p, "DELETE FROM cmd_migrated")
        #expect(try p.sagedev(["reset-db", "--yes"]).status == .exited(0))
        #expect(try value(p, "SELECT string_agg(n::text, ',') FROM cmd_migrated") == "7")

        // A failing migrate command: `sagedev migrate` shows its output and restores the snapshot.
        try write(p.root + "/db/migrate.sh", """
            "\(psqlPath)" "$DATABASE_URL" -X -q -c "CREATE TABLE half_done (n int)"
            echo "boom: the migration tool failed" >&2
            exit 3
            """)
        let r = try p.sagedev(["migrate"])
        #expect(r.status == .exited(1))
        #expect(r.stderrText.contains("boom: the migration tool failed") && r.stderrText.contains("exit"), "\(r.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM pg_class WHERE relname = 'half_done'") == "0")
    }

    @Test func namedSnapshotRoundTrip() throws {
        let p = try TestProject()
        try up(p)
        let snap = try p.sagedev(["db", "snapshot", "clean"])
        #expect(snap.status == .exited(0), "\(snap.stderrText)")
        #expect(try p.sagedev(["db", "snapshot", "clean"]).status == .exited(1))  // taken already
        #expect(try p.sagedev(["db", "snapshot", "bad name"]).status == .exited(1))
        _ = try value(p, "DELETE FROM messages")
        let restore = try p.sagedev(["db", "restore", "clean", "--yes"])
        #expect(restore.status == .exited(0), "\(restore.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM messages") == "5")
        #expect(p.service(try p.status(), "backend")["state"] as? String == "healthy")
        #expect(try p.sagedev(["db", "snapshots"]).stdoutText.contains("clean"))
        #expect(try p.sagedev(["db", "restore", "nope", "--yes"]).stderrText.contains("clean"))
        #expect(try p.sagedev(["db", "drop-snapshot", "clean"]).status == .exited(0))
        #expect(try p.sagedev(["db", "snapshots"]).stdoutText.contains("No snapshots"))
        #expect(try p.sagedev(["db", "frobnicate"]).status == .exited(64))
    }

    @Test func backupRoundTripAndRetention() throws {
        let p = try TestProject()
        try up(p)
        _ = try value(p, "INSERT INTO users (email, name) VALUES ('backed@example.com', 'Backed Up')")
        let b = try p.sagedev(["db", "backup"])
        #expect(b.status == .exited(0), "\(b.stdoutText)\n\(b.stderrText)")
        let backups = p.root + "/.sagedev/backups"
        let files = try FileManager.default.contentsOfDirectory(atPath: backups).filter { $0.hasSuffix(".sql.gz") }
        #expect(files.count == 1)
        let file = try #require(files.first)
        #expect(BackupStore.parse(file) != nil, "\(file)")
        // A real gzip stream holding a plain dump, and no password in it.
        let check = try Subprocess.run(["gzip", "-dc", backups + "/" + file], deadline: .after(seconds: 30))
        #expect(check.status.isSuccess && check.stdoutText.contains("backed@example.com"))
        #expect(!check.stdoutText.contains(p.postgresPassword))

        // Drop everything, restore, and the data is back.
        _ = try value(p, "DROP TABLE messages, chats, users CASCADE")
        let restore = try p.sagedev(["db", "restore-backup", ".sagedev/backups/" + file, "--yes"])
        #expect(restore.status == .exited(0), "\(restore.stdoutText)\n\(restore.stderrText)")
        #expect(try value(p, "SELECT count(*) FROM users WHERE email = 'backed@example.com'") == "1")
        #expect(try value(p, "SELECT count(*) FROM messages") == "5")
        #expect(p.service(try p.status(), "backend")["state"] as? String == "healthy")

        // A damaged backup is refused and the database is untouched.
        try write(backups + "/broken.sql.gz", "not gzip")
        let bad = try p.sagedev(["db", "restore-backup", backups + "/broken.sql.gz", "--yes"])
        #expect(bad.status == .exited(1))
        #expect(try value(p, "SELECT count(*) FROM users WHERE email = 'backed@example.com'") == "1")
        #expect(try p.sagedev(["db", "restore-backup", file]).status == .exited(64))  // no --yes, no terminal

        // Retention: the newest 7 are kept.
        for _ in 0..<8 { #expect(try p.sagedev(["db", "backup"]).status == .exited(0)) }
        let kept = try FileManager.default.contentsOfDirectory(atPath: backups).filter { BackupStore.parse($0) != nil }
        #expect(kept.count == 7, "\(kept)")
        #expect(!kept.contains(file), "the oldest backup was kept")
    }
}

/// The migrator and seeder straight against a PostgreSQL 18 server (no daemon).
@Suite struct MigratorSeederTests {
    func endpoint(_ pg: TestPostgres) -> DatabaseEndpoint {
        DatabaseEndpoint(host: "127.0.0.1", port: pg.port, user: pg.user, password: pg.password, database: pg.database)
    }
    func file(_ name: String, _ text: String) -> SQLFile { SQLFile(name: name, path: "/db/" + name, text: text) }

    @Test func migrationsApplyOnceInOrderWithChecksums() throws {
        let pg = try TestPostgres.make()
        try pg.waitForReadyLine()
        let conn = try endpoint(pg).connect()
        defer { conn.close() }
        let files = [file("001_a.sql", "CREATE TABLE a (id int);"), file("002_b.sql", "CREATE TABLE b (a_id int);\nINSERT INTO a VALUES (1);")]
        let report = try Migrator(files: files).migrate(conn)
        #expect(report.applied == ["001_a.sql", "002_b.sql"])
        #expect(try pg.psql("SELECT name || ':' || checksum FROM sagedev_migrations ORDER BY name")
                == files.map { "\($0.name):\($0.checksum)\n" }.joined())
        let again = try Migrator(files: files).migrate(conn)
        #expect(again.applied.isEmpty && again.alreadyApplied == 2)
        var edited = files
        edited[0] = file("001_a.sql", "CREATE TABLE a (id bigint);")
        #expect {
            try Migrator(files: edited + [file("003_c.sql", "CREATE TABLE c ();")]).migrate(conn)
        } throws: { e in
            let d = e as? DatabaseError
            return d?.code == .migrationEdited && d?.file == "001_a.sql" && d!.message.contains("001_a.sql")
        }
        #expect(try pg.psql("SELECT count(*) FROM pg_class WHERE relname = 'c'") == "0\n")
    }

    @Test func aFailingFileIsRolledBackWhole() throws {
        let pg = try TestPostgres.make()
        try pg.waitForReadyLine()
        let conn = try endpoint(pg).connect()
        defer { conn.close() }
        _ = try Migrator(files: [file("001.sql", "CREATE TABLE t (n int);")]).migrate(conn)
        // Statements 1 and 2 run before the bad column on line 4 is found: the transaction undoes them.
        let seeds = [file("001_ok.sql", "INSERT INTO t VALUES (1);"),
                     file("002_bad.sql", "INSERT INTO t VALUES (2);\nINSERT INTO t VALUES (3);\n\nSELECT  nope FROM t;\n")]
        #expect {
            try Seeder(files: seeds).seedIfUnseeded(conn)
        } throws: { e in
            let d = e as? DatabaseError
            return d?.code == .seedFailed && d?.file == "002_bad.sql" && d?.line == 4 && d?.column == 9 && d?.sqlState == "42703"
        }
        #expect(try pg.psql("SELECT string_agg(n::text, ',' ORDER BY n) FROM t") == "1\n")
        #expect(conn.isOpen)
        #expect(try Seeder(files: seeds).isSeeded(conn) == false)
        // The hint travels with the error.
        #expect {
            try Seeder(files: [file("003_hint.sql", "SELECT * FROM t WHERE n = 'x'::integr;")]).seedAll(conn)
        } throws: { e in (e as? DatabaseError)?.sqlState == "42704" && (e as? DatabaseError)?.line == 1 }
    }

    @Test func templateRefreshAndStaleness() throws {
        let pg = try TestPostgres.make()
        try pg.waitForReadyLine()
        let e = endpoint(pg)
        let conn = try e.connect()
        _ = try Migrator(files: [file("001.sql", "CREATE TABLE t (n int);")]).migrate(conn)
        _ = try Seeder(files: [file("001.sql", "INSERT INTO t VALUES (42);")]).seedIfUnseeded(conn)
        conn.close()
        let admin = try ClusterAdmin.connect(e)
        defer { admin.close() }
        let t = TemplateManager(database: "sage")
        #expect(try t.status(admin, key: "k1") == .missing)
        let method = try t.refresh(admin, key: "k1")
        #expect(method == "clone" || method == "copy")
        #expect(try t.status(admin, key: "k1") == .current)
        #expect(try t.status(admin, key: "k2") == .stale(storedKey: "k1"))
        #expect(try pg.psql("SELECT datallowconn FROM pg_database WHERE datname = 'sage__sagedev_template'") == "f\n")
        try admin.drop("sage")
        try t.recreate(admin)
        #expect(try pg.psql("SELECT n FROM t") == "42\n")
        #expect(try pg.psql("SELECT count(*) FROM sagedev_seeds WHERE kind = 'complete'") == "1\n")
    }
}
