import Testing
import SageSystem
import SageWire
@testable import SageCore

/// How client errors sort into retry-or-stop. The integration tests check the same against the real server;
/// these pin down the cases a real server cannot be made to produce on demand (57P03, 53300, resolver errors).
@Suite struct PostgresProbeOutcomeTests {
    static func serverError(_ state: String, _ message: String, kind: PostgresError.Kind = .server) -> PostgresError {
        PostgresError(kind: kind, message: message, endpoint: "127.0.0.1:5432",
                      diagnostic: PostgresDiagnostic([("S", "FATAL"), ("V", "FATAL"), ("C", state), ("M", message)]))
    }
    static func outcome(_ e: PostgresError) -> ProbeOutcome { PostgresProbe.outcome(for: e, user: "sage", database: "app") }

    @Test func authenticationFailuresNameTheSetting() {
        #expect(Self.outcome(Self.serverError("28P01", "password authentication failed for user \"sage\"", kind: .authentication))
                == .fatal("password authentication failed for user \"sage\": check POSTGRES_PASSWORD in .env"))
        #expect(Self.outcome(Self.serverError("28000", "role \"sage\" does not exist", kind: .authentication))
                == .fatal("role \"sage\" does not exist: check POSTGRES_USER in .env"))
        let hba = Self.outcome(Self.serverError("28000", "no pg_hba.conf entry for host \"10.0.0.1\", user \"sage\", database \"app\", no encryption", kind: .authentication))
        #expect(hba.isFatal && hba.reason.contains("pg_hba.conf"))
        let client = Self.outcome(PostgresError(kind: .authentication, message: "the server requires md5 authentication for user \"sage\", but no password is configured; set the password", endpoint: "x"))
        #expect(client.isFatal && client.reason.hasSuffix("set POSTGRES_PASSWORD in .env"))
    }

    @Test func missingDatabaseNamesTheSetting() {
        #expect(Self.outcome(Self.serverError("3D000", "database \"app\" does not exist"))
                == .fatal("database \"app\" does not exist: check POSTGRES_DB in .env"))
    }

    @Test(arguments: ["57P03", "57P01", "57P02", "53300", "53200", "08006"])
    func transientServerStatesAreRetried(state: String) {
        let o = Self.outcome(Self.serverError(state, "the database system is starting up"))
        #expect(o == .notReady("127.0.0.1:5432: the database system is starting up (SQLSTATE \(state))"))
    }

    @Test func otherServerErrorsStop() {
        let o = Self.outcome(Self.serverError("42501", "permission denied for database app"))
        #expect(o.isFatal && o.reason.contains("42501"))
    }

    @Test func connectionTimeoutAndProtocol() {
        let refused = PostgresError(kind: .connection, message: "connection refused: nothing listens there (yet)", endpoint: "127.0.0.1:5432",
                                    systemError: SystemError(.connectionRefused, "connect 127.0.0.1:5432: Connection refused", errno: 111))
        #expect(Self.outcome(refused) == .notReady("127.0.0.1:5432: connection refused: nothing listens there (yet)"))
        #expect(refused.errno == 111)
        let unresolvable = PostgresError(kind: .connection, message: "cannot resolve host \"db\"", endpoint: "db:5432",
                                         systemError: SystemError(.invalidAddress, "cannot resolve host \"db\""))
        #expect(Self.outcome(unresolvable).isFatal)
        #expect(Self.outcome(PostgresError(kind: .timeout, message: "no answer before the deadline", endpoint: "h:1")) == .notReady("no answer from h:1 before the deadline"))
        let http = Self.outcome(PostgresError(kind: .protocol, message: "this is an HTTP server, not PostgreSQL", endpoint: "h:1"))
        #expect(http == .fatal("h:1: this is an HTTP server, not PostgreSQL"))
    }

    @Test func targetRedactsThePassword() {
        #expect(PostgresProbe(host: "127.0.0.1", port: 5432, user: "sage", password: "hunter2", database: "app").target
                == "postgres://sage:****@127.0.0.1:5432/app")
        #expect(PostgresProbe(host: "::1", port: 5432, user: "sage", password: "", database: "app").target == "postgres://sage@[::1]:5432/app")
        #expect(PostgresProbe(host: "h", port: 5433, user: "u", password: "p", database: "d", unixSocketDirectory: "/run/pg").target
                == "postgres://u:****@/d?host=/run/pg&port=5433")
    }

    @Test func errorDescriptionIsForPeople() {
        let e = PostgresError(kind: .server, message: "syntax error at or near \"SELEC\"", endpoint: "127.0.0.1:5432",
                              diagnostic: PostgresDiagnostic([("S", "ERROR"), ("V", "ERROR"), ("C", "42601"), ("M", "syntax error at or near \"SELEC\""),
                                                              ("P", "1"), ("H", "check the spelling")]))
        #expect(e.description == "PostgreSQL at 127.0.0.1:5432: ERROR 42601: syntax error at or near \"SELEC\" (at character 1)\n  HINT: check the spelling")
        #expect(e.sqlState == "42601" && e.position == 1 && e.hint == "check the spelling" && e.detail == nil && e.where == nil)
        #expect(PostgresError(kind: .timeout, message: "no answer before the deadline", endpoint: "h:1").description
                == "PostgreSQL at h:1: no answer before the deadline")
    }

    @Test func saltedPasswordCacheReturnsTheSameBytesAndCountsHits() {
        let password = Array("cache-unit-\(monotonicNanoseconds())".utf8)
        let salt = Array("some salt".utf8)
        let before = SCRAMSaltedPasswordCache.statistics
        let first = SCRAMSaltedPasswordCache.saltedPassword(password: password, salt: salt, iterations: 4096)
        let second = SCRAMSaltedPasswordCache.saltedPassword(password: password, salt: salt, iterations: 4096)
        #expect(first == PBKDF2.sha256(password: password, salt: salt, iterations: 4096))
        #expect(second == first)
        let after = SCRAMSaltedPasswordCache.statistics
        #expect(after.hits >= before.hits + 1)
        // Another iteration count is another key.
        #expect(SCRAMSaltedPasswordCache.saltedPassword(password: password, salt: salt, iterations: 4097) != first)
    }
}
