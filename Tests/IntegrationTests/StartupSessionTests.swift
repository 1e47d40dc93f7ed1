import Testing
import Dispatch
import Glibc
import SageSystem
import SageWire
@testable import SageCore

/// The session of the check that finds postgres ready, kept for the database step that follows (`StartupSession`),
/// and the probe's fallback database, against the real PostgreSQL 18 from the toolchain. One server for the suite
/// (each test works on sessions of its own), stopped and removed when the test process exits.
@Suite struct StartupSessionTests {
    static let shared: Result<TestPostgres, any Error> = Result {
        let pg = try TestPostgres.make(auth: .scram)
        atexit {
            guard case .success(let pg) = StartupSessionTests.shared else { return }
            pg.stop()
            removeTree(pg.directory)
        }
        try pg.waitForReadyLine()
        return pg
    }
    static func server() throws -> TestPostgres { try shared.get() }

    static func probe(_ pg: TestPostgres, database: String? = nil) -> PostgresProbe {
        PostgresProbe(host: "127.0.0.1", port: pg.port, user: pg.user, password: pg.password, database: database ?? pg.database)
    }

    static func connect(_ pg: TestPostgres, database: String? = nil) throws -> PostgresConnection {
        try PostgresConnection.connect(probe(pg, database: database).options, deadline: .after(seconds: 10))
    }

    /// A session kept by an armed `StartupSession`, with the backend pid it had.
    static func keptSession(_ pg: TestPostgres) throws -> (session: StartupSession, connection: PostgresConnection, pid: Int32?) {
        let session = StartupSession()
        let c = try connect(pg)
        #expect(session.offer(c), "an armed session keeps the first connection offered")
        return (session, c, c.processID)
    }

    @Test func aMissingDatabaseWithAFallbackIsCheckedThroughTheFallback() throws {
        let pg = try Self.server()
        var probe = Self.probe(pg, database: "missing_db")
        probe.fallbackDatabase = "postgres"
        let outcome = probe.check(deadline: .after(seconds: 10))
        #expect(outcome.isReady, "\(outcome)")
        #expect(outcome.reason.contains("on database \"postgres\""), "\(outcome)")
    }

    @Test func aDatabaseThatRefusesConnectionsIsCheckedThroughTheFallback() throws {
        let pg = try Self.server()
        try pg.psql("CREATE DATABASE closed_db ALLOW_CONNECTIONS false", database: "postgres")
        var probe = Self.probe(pg, database: "closed_db")
        #expect(probe.check(deadline: .after(seconds: 10)).isFatal, "without a fallback, a closed database is fatal")
        probe.fallbackDatabase = "postgres"
        #expect(probe.check(deadline: .after(seconds: 10)).isReady)
    }

    /// Runs a successful check whose `keep` answers `keeping`, and returns the session it was offered.
    static func sessionOffered(_ pg: TestPostgres, keeping: Bool) -> PostgresConnection? {
        let handed = Locked<PostgresConnection?>(nil)
        var probe = probe(pg)
        probe.keep = { c in handed.withValue { $0 = c }; return keeping }
        #expect(probe.check(deadline: .after(seconds: 10)).isReady)
        return handed.current
    }

    @Test func aSuccessfulCheckHandsItsSessionToKeepAndTheSessionStillAnswers() throws {
        let pg = try Self.server()
        let c = try #require(Self.sessionOffered(pg, keeping: true))
        defer { c.close() }
        #expect(c.isIdle)
        #expect(try c.scalar("SELECT current_database()") == pg.database)
    }

    @Test func aSessionThatKeepDeclinesIsClosed() throws {
        let pg = try Self.server()
        let c = try #require(Self.sessionOffered(pg, keeping: false))
        #expect(c.isOpen == false)
    }

    @Test func aCheckThroughTheFallbackKeepsNoSession() throws {
        let pg = try Self.server()
        let offered = Locked(0)
        var probe = Self.probe(pg, database: "missing_db")
        probe.fallbackDatabase = "postgres"
        probe.keep = { _ in offered.withValue { $0 += 1 }; return true }
        #expect(probe.check(deadline: .after(seconds: 10)).isReady)
        #expect(offered.current == 0, "a session on the maintenance database is no use to the database step")
    }

    @Test func anArmedStartupSessionKeepsOnlyTheFirstSessionOffered() throws {
        let pg = try Self.server()
        let (session, first, _) = try Self.keptSession(pg)
        let second = try Self.connect(pg)
        defer { second.close(); session.close() }
        #expect(!session.offer(second), "once it keeps one, it is disarmed")
        #expect(session.take(first.options) === first)
    }

    @Test func theStartupSessionIsTakenOnlyForItsOwnEndpoint() throws {
        let pg = try Self.server()
        let (session, first, _) = try Self.keptSession(pg)
        defer { session.close() }
        var other = first.options
        other.database = "postgres"
        #expect(session.take(other) == nil)
        #expect(first.isOpen == false, "a session found for another endpoint is closed, not left open")
    }

    @Test func theStartupSessionIsTakenOnce() throws {
        let pg = try Self.server()
        let (session, first, _) = try Self.keptSession(pg)
        let taken = session.take(first.options)
        defer { taken?.close() }
        #expect(taken === first)
        #expect(session.take(first.options) == nil)
    }

    @Test func aSessionTheServerEndedIsNotHandedOut() throws {
        let pg = try Self.server()
        let (session, first, pid) = try Self.keptSession(pg)
        defer { session.close() }
        let backend = try #require(pid)
        // pg_terminate_backend with a timeout returns once the backend has gone.
        #expect(try pg.psql("SELECT pg_terminate_backend(\(backend), 10000)", database: "postgres") == "t\n")
        #expect(session.take(first.options) == nil)
        #expect(first.isOpen == false)
    }

    @Test func rearmingClosesASessionKeptFromBefore() throws {
        let pg = try Self.server()
        let (session, first, _) = try Self.keptSession(pg)
        session.arm()
        #expect(first.isOpen == false)
        #expect(session.take(first.options) == nil)
        #expect(session.isArmed)
    }

    @Test func aDisarmedStartupSessionKeepsNothing() throws {
        let pg = try Self.server()
        let session = StartupSession()
        session.disarm()
        let c = try Self.connect(pg)
        defer { c.close() }
        #expect(!session.offer(c))
        #expect(session.take(c.options) == nil)
    }

    @Test func whileBusyAndArmedPostgresProbeKeepsTheAppDatabaseSessionForTheStep() throws {
        let pg = try Self.server()
        let activity = DatabaseActivity()
        activity.begin()
        defer { activity.end(); activity.startupSession.close() }
        let normal = Self.probe(pg)
        let probe = activity.postgresProbe(normal, maintenance: "postgres")
        #expect(probe.check(deadline: .after(seconds: 10)).isReady)
        #expect(!activity.startupSession.isArmed)
        let kept = try #require(activity.startupSession.take(normal.options))
        defer { kept.close() }
        #expect(try kept.scalar("SELECT current_database()") == pg.database)
        // Disarmed: the next check while busy goes to the maintenance database and keeps nothing.
        let next = probe.check(deadline: .after(seconds: 10))
        #expect(next.reason.contains("on database \"postgres\""), "\(next)")
    }
}
