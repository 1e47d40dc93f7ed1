import Testing
import Foundation
import SageSystem
import SageWire
import SageCore

/// The client and probe against the real PostgreSQL 18 from the toolchain, one cluster per test,
/// with pg_hba.conf set by initdb to the auth method under test for TCP connections.
@Suite struct PostgresClientTests {
    static func options(_ pg: TestPostgres, password: String? = nil, database: String? = nil, socket: Bool = false) -> PostgresConnectOptions {
        PostgresConnectOptions(host: "127.0.0.1", port: pg.port, unixSocketDirectory: socket ? pg.socketDirectory : nil,
                               user: pg.user, password: password ?? pg.password, database: database ?? pg.database)
    }

    static func probe(_ pg: TestPostgres, password: String? = nil, database: String? = nil) -> PostgresProbe {
        PostgresProbe(host: "127.0.0.1", port: pg.port, user: pg.user, password: password ?? pg.password, database: database ?? pg.database)
    }

    @Test(arguments: [TestPostgres.Auth.trust, .password, .md5, .scram])
    func authenticationMethod(auth: TestPostgres.Auth) throws {
        let pg = try TestPostgres.make(auth: auth)
        try pg.waitForReadyLine()
        if auth == .md5 {
            // The md5 method only asks for md5 when the stored password is an md5 hash.
            #expect(try pg.psql("SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = current_user") == "t\n")
        }
        let before = SCRAMSaltedPasswordCache.statistics
        let connection = try PostgresConnection.connect(Self.options(pg), deadline: .after(seconds: 10))
        defer { connection.close() }
        let r = try connection.simpleQuery("SELECT current_user, current_database(), current_setting('application_name')", deadline: .after(seconds: 10))
        #expect(r == [PostgresResult(columns: ["current_user", "current_database", "current_setting"],
                                     rows: [[pg.user, pg.database, "sagedev"]], commandTag: "SELECT 1")])
        #expect(connection.parameters["server_version"]?.hasPrefix("18") == true)
        #expect(connection.parameters["client_encoding"] == "UTF8")
        #expect(connection.processID != nil)
        if auth == .scram {
            let after = SCRAMSaltedPasswordCache.statistics
            #expect(after.hits + after.misses > before.hits + before.misses, "SCRAM went through the salted-password cache")
        }

        let ready = Self.probe(pg).check(deadline: .after(seconds: 10))
        #expect(ready.isReady, "\(ready)")
        #expect(ready.reason.contains("PostgreSQL 18"))

        // A wrong password: fatal at once (trust lets anyone in, so it is ready there).
        let start = monotonicNanoseconds()
        let wrong = Self.probe(pg, password: "not the password").check(deadline: .after(seconds: 10))
        let elapsed = millisecondsSince(start)
        if auth == .trust {
            #expect(wrong.isReady, "\(wrong)")
        } else {
            #expect(wrong == .fatal("password authentication failed for user \"sage\": check POSTGRES_PASSWORD in .env"))
            #expect(elapsed < 1000, "wrong password took \(elapsed) ms")
            let e = #expect(throws: PostgresError.self) { _ = try PostgresConnection.connect(Self.options(pg, password: "nope"), deadline: .after(seconds: 10)) }
            #expect(e?.kind == .authentication)
            #expect(e?.sqlState == "28P01")
            #expect(e?.description.contains("FATAL 28P01: password authentication failed for user \"sage\"") == true)
        }
        // No password at all, where one is needed: a clear client-side refusal.
        if auth != .trust {
            let none = Self.probe(pg, password: "").check(deadline: .after(seconds: 10))
            #expect(none.isFatal && none.reason.contains("set POSTGRES_PASSWORD in .env"), "\(none)")
        }
    }

    @Test func unixSocketConnection() throws {
        let pg = try TestPostgres.make(auth: .scram)
        try pg.waitForReadyLine()
        let connection = try PostgresConnection.connect(Self.options(pg, socket: true), deadline: .after(seconds: 10))
        defer { connection.close() }
        #expect(connection.options.endpoint == "\(pg.socketDirectory)/.s.PGSQL.\(pg.port)")
        let r = try connection.simpleQuery("SELECT inet_server_addr() IS NULL", deadline: .after(seconds: 10))
        #expect(r.first?.rows == [["t"]])  // no IP address: it came over the Unix socket
        let probe = PostgresProbe(host: "127.0.0.1", port: pg.port, user: pg.user, password: pg.password, database: pg.database,
                                  unixSocketDirectory: pg.socketDirectory)
        #expect(probe.check(deadline: .after(seconds: 10)).isReady)
        #expect(probe.target == "postgres://sage:****@/sage?host=\(pg.socketDirectory)&port=\(pg.port)")
    }

    @Test func missingDatabaseIsFatal() throws {
        let pg = try TestPostgres.make(auth: .scram)
        try pg.waitForReadyLine()
        let start = monotonicNanoseconds()
        let outcome = Self.probe(pg, database: "nope").check(deadline: .after(seconds: 10))
        #expect(outcome == .fatal("database \"nope\" does not exist: check POSTGRES_DB in .env"))
        #expect(millisecondsSince(start) < 1000)
        let e = #expect(throws: PostgresError.self) { _ = try PostgresConnection.connect(Self.options(pg, database: "nope"), deadline: .after(seconds: 10)) }
        #expect(e?.kind == .server)
        #expect(e?.sqlState == "3D000")
    }

    @Test func multiStatementQueryResults() throws {
        let pg = try TestPostgres.make(auth: .scram)
        try pg.waitForReadyLine()
        let c = try PostgresConnection.connect(Self.options(pg), deadline: .after(seconds: 10))
        defer { c.close() }
        let sql = """
            DROP TABLE IF EXISTS nothing_here;
            CREATE TABLE people (id int PRIMARY KEY, name text, note text);
            INSERT INTO people VALUES (1, 'Ada', NULL), (2, 'Grace', 'héllo, wörld'), (3, '', 'x');
            SELECT id, name, note FROM people ORDER BY id;
            UPDATE people SET note = 'y' WHERE id > 1;
            SELECT count(*) AS n FROM people WHERE false;
            """
        let r = try c.simpleQuery(sql, deadline: .after(seconds: 10))
        #expect(r.map(\.commandTag) == ["DROP TABLE", "CREATE TABLE", "INSERT 0 3", "SELECT 3", "UPDATE 2", "SELECT 1"])
        #expect(r[3].columns == ["id", "name", "note"])
        #expect(r[3].rows == [["1", "Ada", nil], ["2", "Grace", "héllo, wörld"], ["3", "", "x"]])
        #expect(r[5].rows == [["0"]])
        #expect(c.notices.map(\.message) == ["table \"nothing_here\" does not exist, skipping"])
        #expect(c.notices.first?.severity == "NOTICE")
        #expect(c.takeNotices().count == 1 && c.notices.isEmpty)

        // Several statements in one transaction block, and an empty query.
        let t = try c.simpleQuery("BEGIN; INSERT INTO people VALUES (4, 'Linus', NULL); COMMIT", deadline: .after(seconds: 10))
        #expect(t.map(\.commandTag) == ["BEGIN", "INSERT 0 1", "COMMIT"])
        #expect(try c.simpleQuery("", deadline: .after(seconds: 10)) == [])
        #expect(try c.simpleQuery("SHOW max_connections; SELECT count(*) > 0 FROM pg_stat_activity", deadline: .after(seconds: 10)).map(\.rows)
                == [[["100"]], [["t"]]])
        // COPY TO STDOUT lines come back as rows of one column.
        let copy = try c.simpleQuery("COPY (SELECT id, name FROM people ORDER BY id LIMIT 2) TO STDOUT", deadline: .after(seconds: 10))
        #expect(copy.first?.rows == [["1\tAda\n"], ["2\tGrace\n"]])
        #expect(copy.first?.commandTag == "COPY 2")
    }

    @Test func errorResponseFieldsAndTheConnectionStaysUsable() throws {
        let pg = try TestPostgres.make(auth: .scram)
        try pg.waitForReadyLine()
        let c = try PostgresConnection.connect(Self.options(pg), deadline: .after(seconds: 10))
        defer { c.close() }

        let syntax = #expect(throws: PostgresError.self) { _ = try c.simpleQuery("SELEC 1", deadline: .after(seconds: 10)) }
        #expect(syntax?.kind == .server)
        #expect(syntax?.sqlState == "42601")
        #expect(syntax?.position == 1)
        #expect(syntax?.message == "syntax error at or near \"SELEC\"")
        #expect(syntax?.severity == "ERROR")
        #expect(syntax?.description.contains("ERROR 42601: syntax error at or near \"SELEC\" (at character 1)") == true)
        #expect(try c.simpleQuery("SELECT 1", deadline: .after(seconds: 10)).first?.rows == [["1"]])

        // An error in the middle of a script: later statements do not run, the connection goes on.
        _ = try c.simpleQuery("CREATE TABLE t (id int PRIMARY KEY)", deadline: .after(seconds: 10))
        let mid = #expect(throws: PostgresError.self) {
            _ = try c.simpleQuery("INSERT INTO t VALUES (1); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", deadline: .after(seconds: 10))
        }
        #expect(mid?.sqlState == "23505")
        #expect(mid?.detail == "Key (id)=(1) already exists.")
        #expect(mid?.diagnostic?.tableName == "t")
        #expect(mid?.diagnostic?.constraintName == "t_pkey")
        #expect(try c.simpleQuery("SELECT count(*) FROM t", deadline: .after(seconds: 10)).first?.rows == [["0"]],
                "the script ran as one implicit transaction and rolled back")

        let raised = #expect(throws: PostgresError.self) {
            _ = try c.simpleQuery("DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = 'P0001'; END $$",
                                  deadline: .after(seconds: 10))
        }
        #expect(raised?.sqlState == "P0001")
        #expect(raised?.message == "boom")
        #expect(raised?.detail == "the detail")
        #expect(raised?.hint == "the hint")
        #expect(raised?.where?.contains("PL/pgSQL function inline_code_block") == true)
        #expect(raised?.description.contains("HINT: the hint") == true)

        let zero = #expect(throws: PostgresError.self) { _ = try c.simpleQuery("SELECT 1; SELECT 1/0; SELECT 3", deadline: .after(seconds: 10)) }
        #expect(zero?.sqlState == "22012")
        #expect(c.isOpen)
        #expect(try c.simpleQuery("SELECT 'still here'", deadline: .after(seconds: 10)).first?.rows == [["still here"]])
    }

    @Test func queryPastItsDeadlineTimesOutAndClosesTheConnection() throws {
        let pg = try TestPostgres.make(auth: .scram)
        try pg.waitForReadyLine()
        let c = try PostgresConnection.connect(Self.options(pg), deadline: .after(seconds: 10))
        let start = monotonicNanoseconds()
        let e = #expect(throws: PostgresError.self) { _ = try c.simpleQuery("SELECT pg_sleep_for('5 seconds')", deadline: .after(milliseconds: 200)) }
        #expect(e?.kind == .timeout)
        #expect(millisecondsSince(start) < 1500)
        #expect(!c.isOpen)
        let closed = #expect(throws: PostgresError.self) { _ = try c.simpleQuery("SELECT 1", deadline: .after(seconds: 1)) }
        #expect(closed?.kind == .connection)
    }

    @Test func repeatedScramConnectionsUseTheSaltedPasswordCache() throws {
        let pg = try TestPostgres.make(auth: .scram, password: "cache-test-\(freePort())")
        try pg.waitForReadyLine()
        try PostgresConnection.connect(Self.options(pg), deadline: .after(seconds: 10)).close()
        // The first derivation for this (unique) password is a miss; from then on every connection is a hit.
        let before = SCRAMSaltedPasswordCache.statistics
        for _ in 0..<3 { try PostgresConnection.connect(Self.options(pg), deadline: .after(seconds: 10)).close() }
        let after = SCRAMSaltedPasswordCache.statistics
        #expect(after.hits - before.hits >= 3)
    }

    @Test func serverStartedAfterProbingBeganBecomesReady() throws {
        let pg = try TestPostgres.make(auth: .scram, start: false)
        let probe = Self.probe(pg)
        let outcomes = Locked<[ProbeOutcome]>([])
        let finished = DispatchSemaphore(value: 0)
        let readyAt = Locked<UInt64>(0)
        let loopDeadline = Deadline.after(seconds: 60)
        Thread {
            // The probe loop: retry not-ready outcomes until ready, fatal or the deadline.
            waitUntil(loopDeadline) {
                let o = probe.check(deadline: .after(seconds: 2).earlier(loopDeadline))
                outcomes.withValue { $0.append(o) }
                if o.isReady { readyAt.withValue { $0 = monotonicNanoseconds() } }
                return o.isReady || o.isFatal
            }
            finished.signal()
        }.start()
        // Let the loop see the refused port first, then start the server.
        #expect(waitUntil(.after(seconds: 10)) { outcomes.current.count >= 2 })
        try pg.start()
        try pg.waitForReadyLine()
        let logReadyAt = monotonicNanoseconds()
        #expect(finished.wait(timeout: .now() + 60) == .success)
        let all = outcomes.current
        #expect(all.last?.isReady == true, "\(all.last.map { "\($0)" } ?? "none")")
        #expect(all.first.map { !$0.isReady && !$0.isFatal } == true, "the first outcome was \(String(describing: all.first))")
        #expect(all.first?.reason.contains("connection refused") == true)
        // The probe saw it ready within a short time of the log line (which we only notice by polling the file).
        let lag = Double(Int64(bitPattern: readyAt.current &- logReadyAt)) / 1e6
        #expect(lag < 1000, "ready \(lag) ms after the log line was noticed")
    }
}
