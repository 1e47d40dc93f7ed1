import Testing
import SageSystem

/// The launchers the other integration tests rely on, checked with the real clients.
@Suite struct TestServersTests {
    @Test func postgresStartsAndPsqlConnects() throws {
        let pg = try TestPostgres.make()
        try pg.waitForReadyLine()
        #expect(try pg.psql("SELECT current_database()") == "sage\n")
        #expect(try pg.psql("SHOW server_version").hasPrefix("18."))
    }

    @Test func valkeyStartsAndCliPings() throws {
        let vk = try TestValkey.make(password: "pw")
        try vk.waitForReadyLine()
        #expect(try vk.cli(["PING"]).stdoutText == "PONG\n")
    }
}
