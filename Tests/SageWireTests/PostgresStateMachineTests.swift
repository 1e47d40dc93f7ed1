import Testing
import SageFuzz
@testable import SageWire

@Suite struct PostgresStateMachineTests {
    typealias Machine = PostgresConnectionStateMachine

    static func machine(password: String = "secret", nonce: String? = "fyko+d2lbbFgONRv9qkxdawL") -> Machine {
        Machine(configuration: .init(user: "sage", database: "app", password: password, scramClientNonce: nonce))
    }

    static func decode(_ frame: [UInt8]) -> PostgresBackendMessage {
        var decoder = PostgresBackendDecoder()
        var index = 0
        return try! decoder.decode(frame, from: &index)!
    }

    /// Startup through AuthenticationOk, parameters, key and ReadyForQuery.
    static func finishStartup(_ m: inout Machine) {
        #expect(m.received(decode(PostgresFrames.authOk())) == .wait)
        #expect(m.received(decode(PostgresFrames.parameterStatus("server_version", "18.1"))) == .wait)
        #expect(m.received(decode(PostgresFrames.backendKey(77, 1234))) == .wait)
        #expect(m.received(decode(PostgresFrames.readyForQuery())) == .connected)
        #expect(m.isReadyForQuery)
    }

    @Test func trustStartup() throws {
        var m = Self.machine()
        #expect(m.start() == .send(try PostgresFrontend.startupMessage(user: "sage", database: "app")))
        Self.finishStartup(&m)
        #expect(m.parameters["server_version"] == "18.1")
        #expect(m.backendProcessID == 77)
        #expect(m.backendSecretKey == [0, 0, 4, 210])
        #expect(m.transactionStatus == .idle)
    }

    @Test func cleartextPassword() throws {
        var m = Self.machine()
        _ = m.start()
        #expect(m.received(Self.decode(PostgresFrames.authCleartext())) == .send(try PostgresFrontend.passwordMessage("secret")))
        Self.finishStartup(&m)
    }

    @Test func md5Password() throws {
        var m = Self.machine()
        _ = m.start()
        #expect(m.received(Self.decode(PostgresFrames.authMD5([1, 2, 3, 4]))) == .send(PostgresFrames.frame("p", PostgresFrames.cstr("md5e93013eb621c24b1d75ee07af10e1953"))))
        Self.finishStartup(&m)
    }

    /// Runs SCRAM up to the server-final message, returning the machine and the right server signature.
    static func scramUntilFinal(password: String = "secret", serverPassword: String = "secret") throws -> (Machine, [UInt8]?) {
        var m = Self.machine(password: password)
        _ = m.start()
        let server = PGSCRAMTestServer(password: serverPassword, salt: Array("saltsaltsalt".utf8), iterations: 4096)
        let initial = m.received(Self.decode(PostgresFrames.authSASL(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])))
        let clientFirst = Array("n,,n=,r=fyko+d2lbbFgONRv9qkxdawL".utf8)
        #expect(initial == .send(try PostgresFrontend.saslInitialResponse(mechanism: "SCRAM-SHA-256", initialResponse: clientFirst)))
        let serverFirst = server.serverFirst(clientFirst: clientFirst)
        guard case .send(let response) = m.received(Self.decode(PostgresFrames.authSASLContinue(serverFirst))) else {
            Issue.record("no client-final"); return (m, nil)
        }
        #expect(response.first == UInt8(ascii: "p"))
        let clientFinal = Array(response[5...])
        return (m, server.verify(clientFirst: clientFirst, serverFirst: serverFirst, clientFinal: clientFinal))
    }

    @Test func scramWithTheRightServerSignature() throws {
        var (m, signature) = try Self.scramUntilFinal()
        let sig = try #require(signature)
        #expect(m.received(Self.decode(PostgresFrames.authSASLFinal("v=" + Base64.encode(sig)))) == .wait)
        Self.finishStartup(&m)
    }

    @Test func scramWithAWrongPasswordProducesAProofTheServerRejects() throws {
        let (_, signature) = try Self.scramUntilFinal(password: "wrong", serverPassword: "secret")
        #expect(signature == nil)
    }

    @Test func scramWithAWrongServerSignatureFails() throws {
        var (m, _) = try Self.scramUntilFinal()
        let action = m.received(Self.decode(PostgresFrames.authSASLFinal("v=" + Base64.encode([UInt8](repeating: 1, count: 32)))))
        guard case .close(.client(let e)) = action else { Issue.record("expected failure, got \(action)"); return }
        #expect(e.code == .authentication)
        #expect(e.message.contains("signature"))
        #expect(m.isClosed)
    }

    @Test func scramServerSkippingItsSignatureFails() throws {
        var (m, _) = try Self.scramUntilFinal()
        guard case .close(.client(let e)) = m.received(Self.decode(PostgresFrames.authOk())) else { Issue.record("AuthOk accepted"); return }
        #expect(e.code == .authentication)
    }

    @Test func scramServerErrorIsReported() throws {
        var (m, _) = try Self.scramUntilFinal()
        guard case .close(.client(let e)) = m.received(Self.decode(PostgresFrames.authSASLFinal("e=invalid-proof"))) else { Issue.record("accepted"); return }
        #expect(e.message.contains("invalid-proof"))
    }

    @Test func scramNonceThatIsNotOursFails() throws {
        var m = Self.machine()
        _ = m.start()
        _ = m.received(Self.decode(PostgresFrames.authSASL(["SCRAM-SHA-256"])))
        let action = m.received(Self.decode(PostgresFrames.authSASLContinue("r=somebodyElse123,s=c2FsdA==,i=4096")))
        guard case .close(.client(let e)) = action else { Issue.record("accepted \(action)"); return }
        #expect(e.code == .authentication)
        #expect(e.message.contains("nonce"))
    }

    @Test func onlyScramPlusOffered() {
        var m = Self.machine()
        _ = m.start()
        guard case .close(.client(let e)) = m.received(Self.decode(PostgresFrames.authSASL(["SCRAM-SHA-256-PLUS"]))) else { Issue.record("accepted"); return }
        #expect(e.code == .unsupported)
        #expect(e.message.contains("SCRAM-SHA-256-PLUS"))
    }

    @Test func gssapiIsUnsupported() {
        var m = Self.machine()
        _ = m.start()
        guard case .close(.client(let e)) = m.received(Self.decode(PostgresFrames.frame("R", PostgresFrames.int32(7)))) else { Issue.record("accepted"); return }
        #expect(e.code == .unsupported)
        #expect(e.message.contains("GSSAPI"))
    }

    @Test(arguments: [PostgresFrames.authCleartext(), PostgresFrames.authMD5([1, 2, 3, 4]), PostgresFrames.authSASL(["SCRAM-SHA-256"])])
    func passwordRequestWithoutAPasswordFails(frame: [UInt8]) {
        var m = Self.machine(password: "")
        _ = m.start()
        guard case .close(.client(let e)) = m.received(Self.decode(frame)) else { Issue.record("accepted"); return }
        #expect(e.code == .authentication)
        #expect(e.message.contains("no password is configured"))
    }

    @Test func authenticationErrorFromTheServer() {
        var m = Self.machine()
        _ = m.start()
        _ = m.received(Self.decode(PostgresFrames.authCleartext()))
        let fields: [(Character, String)] = [("S", "FATAL"), ("V", "FATAL"), ("C", "28P01"), ("M", "password authentication failed for user \"sage\"")]
        #expect(m.received(Self.decode(PostgresFrames.error(fields))) == .close(.server(PostgresDiagnostic(fields))))
        #expect(m.isClosed)
    }

    @Test func outOfOrderStartupMessagesFail() {
        var m = Self.machine()
        _ = m.start()
        guard case .close(.client(let e)) = m.received(Self.decode(PostgresFrames.readyForQuery())) else { Issue.record("accepted"); return }
        #expect(e.code == .unexpected)
        var n = Self.machine()
        _ = n.start()
        guard case .close(.client) = n.received(Self.decode(PostgresFrames.authSASLFinal("v=x"))) else { Issue.record("accepted SASLFinal first"); return }
        var o = Self.machine()
        _ = o.start()
        guard case .close(.client) = o.received(Self.decode(PostgresFrames.dataRow(["1"]))) else { Issue.record("accepted a DataRow in startup"); return }
    }

    @Test func endOfStreamDuringStartup() {
        var m = Self.machine()
        _ = m.start()
        guard case .close(.closedByServer(let why)) = m.receivedEndOfStream() else { Issue.record("no failure"); return }
        #expect(why.contains("during startup"))
    }

    // MARK: queries

    static func connected() -> Machine {
        var m = Self.machine()
        _ = m.start()
        finishStartup(&m)
        return m
    }

    @Test func multiStatementQuery() throws {
        var m = Self.connected()
        #expect(m.query("CREATE TABLE t(id int); SELECT 1 AS id, NULL AS name; SELECT 2") == .send(try PostgresFrontend.query("CREATE TABLE t(id int); SELECT 1 AS id, NULL AS name; SELECT 2")))
        for frame in [PostgresFrames.commandComplete("CREATE TABLE"), PostgresFrames.rowDescription(["id", "name"]), PostgresFrames.dataRow(["1", nil]),
                      PostgresFrames.dataRow(["3", "x"]), PostgresFrames.notice([("S", "NOTICE"), ("M", "hello")]), PostgresFrames.commandComplete("SELECT 2"),
                      PostgresFrames.rowDescription(["?column?"]), PostgresFrames.dataRow(["2"]), PostgresFrames.commandComplete("SELECT 1"),
                      PostgresFrames.parameterStatus("TimeZone", "UTC")] {
            #expect(m.received(Self.decode(frame)) == .wait)
        }
        guard case .queryCompleted(let results) = m.received(Self.decode(PostgresFrames.readyForQuery())) else { Issue.record("not completed"); return }
        #expect(results.count == 3)
        #expect(results[0].commandTag == "CREATE TABLE" && results[0].columns.isEmpty && results[0].rows.isEmpty)
        #expect(results[1].columns.map(\.name) == ["id", "name"])
        #expect(results[1].rows == [["1", nil], ["3", "x"]])
        #expect(results[1].commandTag == "SELECT 2")
        #expect(results[2].rows == [["2"]])
        #expect(m.notices.map(\.message) == ["hello"])
        #expect(m.parameters["TimeZone"] == "UTC")
        #expect(m.isReadyForQuery)
        #expect(m.takeNotices().count == 1 && m.notices.isEmpty)
    }

    @Test func errorInTheMiddleKeepsEarlierResultsAndTheConnection() throws {
        var m = Self.connected()
        _ = m.query("SELECT 1; SELEC 2; SELECT 3")
        for frame in [PostgresFrames.rowDescription(["?column?"]), PostgresFrames.dataRow(["1"]), PostgresFrames.commandComplete("SELECT 1"),
                      PostgresFrames.error(PostgresFrames.syntaxErrorFields)] {
            #expect(m.received(Self.decode(frame)) == .wait)
        }
        let action = m.received(Self.decode(PostgresFrames.readyForQuery("I")))
        #expect(action == .queryFailed(PostgresDiagnostic(PostgresFrames.syntaxErrorFields),
                                       completed: [PostgresQueryResult(columns: [PostgresColumn(name: "?column?", tableOID: 16384, columnAttributeNumber: 1, typeOID: 23, typeSize: 4)],
                                                                       rows: [["1"]], commandTag: "SELECT 1")]))
        #expect(m.isReadyForQuery)
        // The connection goes on.
        #expect(m.query("SELECT 1") == .send(try PostgresFrontend.query("SELECT 1")))
        _ = m.received(Self.decode(PostgresFrames.emptyQuery()))
        #expect(m.received(Self.decode(PostgresFrames.readyForQuery())) == .queryCompleted([]))
    }

    @Test func fatalDuringAQueryThenEndOfStream() {
        var m = Self.connected()
        _ = m.query("SELECT pg_sleep_for('10 seconds')")
        let fatal: [(Character, String)] = [("S", "FATAL"), ("V", "FATAL"), ("C", "57P01"), ("M", "terminating connection due to administrator command")]
        #expect(m.received(Self.decode(PostgresFrames.error(fatal))) == .wait)
        #expect(m.receivedEndOfStream() == .close(.server(PostgresDiagnostic(fatal))))
    }

    @Test func fatalWhileIdleIsKeptForTheEndOfStream() {
        var m = Self.connected()
        let fatal: [(Character, String)] = [("S", "FATAL"), ("V", "FATAL"), ("C", "57P01"), ("M", "terminating connection due to administrator command")]
        #expect(m.received(Self.decode(PostgresFrames.error(fatal))) == .wait)
        #expect(m.receivedEndOfStream() == .close(.server(PostgresDiagnostic(fatal))))
    }

    @Test func copyFromStdinIsRefusedPolitely() throws {
        var m = Self.connected()
        _ = m.query("COPY t FROM STDIN")
        guard case .send(let bytes) = m.received(Self.decode(PostgresFrames.frame("G", [0] + PostgresFrames.int16(0)))) else { Issue.record("no CopyFail"); return }
        #expect(bytes.first == UInt8(ascii: "f"))
        _ = m.received(Self.decode(PostgresFrames.error([("S", "ERROR"), ("C", "57014"), ("M", "COPY from stdin failed")])))
        guard case .queryFailed(let e, _) = m.received(Self.decode(PostgresFrames.readyForQuery())) else { Issue.record("not failed"); return }
        #expect(e.sqlState == "57014")
    }

    @Test func copyToStdoutRowsAreCollected() {
        var m = Self.connected()
        _ = m.query("COPY t TO STDOUT")
        for frame in [PostgresFrames.frame("H", [0] + PostgresFrames.int16(1) + PostgresFrames.int16(0)), PostgresFrames.frame("d", Array("1\n".utf8)),
                      PostgresFrames.frame("d", Array("2\n".utf8)), PostgresFrames.frame("c", []), PostgresFrames.commandComplete("COPY 2")] {
            #expect(m.received(Self.decode(frame)) == .wait)
        }
        guard case .queryCompleted(let r) = m.received(Self.decode(PostgresFrames.readyForQuery())) else { Issue.record("not completed"); return }
        #expect(r.first?.rows == [["1\n"], ["2\n"]])
        #expect(r.first?.commandTag == "COPY 2")
    }

    @Test func protocolViolationsDuringAQuery() {
        let cases: [[[UInt8]]] = [
            [PostgresFrames.dataRow(["1"])],                                              // no RowDescription
            [PostgresFrames.rowDescription(["a", "b"]), PostgresFrames.dataRow(["1"])],        // wrong value count
            [PostgresFrames.rowDescription(["a"]), PostgresFrames.readyForQuery()],            // result never completed
            [PostgresFrames.authOk()],                                                    // authentication mid-query
            [PostgresFrames.frame("d", [1])],                                             // CopyData out of a copy
        ]
        for frames in cases {
            var m = Self.connected()
            _ = m.query("SELECT 1")
            var last = PostgresConnectionStateMachine.Action.wait
            for f in frames { last = m.received(Self.decode(f)) }
            guard case .close(.client) = last else { Issue.record("\(frames) gave \(last)"); continue }
            #expect(m.isClosed)
        }
    }

    @Test func queryWhileBusyClosesAndNulIsRefusedWithoutSending() {
        var m = Self.connected()
        guard case .queryFailed(let e, completed: []) = m.query("SELECT '\0'") else { Issue.record("NUL accepted"); return }
        #expect(e.sqlState == "22021")
        #expect(m.isReadyForQuery)
        _ = m.query("SELECT 1")
        guard case .close(.client) = m.query("SELECT 2") else { Issue.record("second query accepted"); return }
    }

    @Test func terminate() {
        var m = Self.connected()
        #expect(m.terminate() == .sendAndClose([UInt8(ascii: "X"), 0, 0, 0, 4]))
        #expect(m.isClosed)
        var s = Self.machine()
        _ = s.start()
        #expect(s.terminate() == .sendAndClose([]))
    }
}
