import Testing
import SageFuzz
@testable import SageWire

@Suite struct PostgresDecoderTests {
    /// Feeds `stream` in two parts split at `split`, returning the messages in order.
    static func decodeAll(_ stream: [UInt8], split: Int, decoder: PostgresBackendDecoder = PostgresBackendDecoder()) throws -> [PostgresBackendMessage] {
        var reader = PostgresMessageReader(decoder: decoder)
        var out = [PostgresBackendMessage]()
        for part in [Array(stream[..<split]), Array(stream[split...])] {
            reader.append(part)
            while let m = try reader.next() { out.append(m) }
        }
        #expect(reader.bufferedByteCount == 0)
        return out
    }

    @Test func everyFrameDecodesWhenSplitAtEveryByte() throws {
        for (frame, expected) in PostgresFrames.corpus {
            for split in 0...frame.count {
                let messages = try Self.decodeAll(frame, split: split)
                #expect(messages == [expected], "frame \(Bytes.hex(frame)) split at \(split)")
            }
        }
    }

    @Test func wholeConversationSplitAtEveryByteAndFedByteByByte() throws {
        let corpus = PostgresFrames.corpus
        let stream = corpus.flatMap { $0.0 }
        let expected = corpus.map { $0.1 }
        for split in 0...stream.count {
            #expect(try Self.decodeAll(stream, split: split) == expected, "split at \(split)")
        }
        var reader = PostgresMessageReader(decoder: PostgresBackendDecoder())
        var out = [PostgresBackendMessage]()
        for b in stream {
            reader.append([b])
            while let m = try reader.next() { out.append(m) }
        }
        #expect(out == expected)
    }

    @Test func shortInputConsumesNothing() throws {
        for (frame, expected) in PostgresFrames.corpus {
            var decoder = PostgresBackendDecoder()
            for cut in 0..<frame.count {
                var index = 0
                #expect(try decoder.decode(Array(frame[..<cut]), from: &index) == nil)
                #expect(index == 0)
            }
            var index = 0
            #expect(try decoder.decode(frame + [0x5a], from: &index) == expected)
            #expect(index == frame.count)
        }
    }

    @Test func errorResponseKeepsEveryField() throws {
        let fields: [(Character, String)] = [
            ("S", "ERREUR"), ("V", "ERROR"), ("C", "23505"), ("M", "duplicate key value violates unique constraint \"users_pkey\""),
            ("D", "Key (id)=(1) already exists."), ("H", "pick another id"), ("P", "15"), ("p", "3"), ("q", "SELECT 1"),
            ("W", "PL/pgSQL function f() line 3 at SQL statement"), ("s", "public"), ("t", "users"), ("c", "id"),
            ("d", "int4"), ("n", "users_pkey"), ("F", "nbtinsert.c"), ("L", "666"), ("R", "_bt_check_unique"), ("Z", "future"),
        ]
        var index = 0
        var decoder = PostgresBackendDecoder()
        guard case .errorResponse(let d)? = try decoder.decode(PostgresFrames.error(fields), from: &index) else {
            Issue.record("not an ErrorResponse"); return
        }
        #expect(d.severity == "ERROR")
        #expect(d.localizedSeverity == "ERREUR")
        #expect(d.sqlState == "23505")
        #expect(d.message == "duplicate key value violates unique constraint \"users_pkey\"")
        #expect(d.detail == "Key (id)=(1) already exists.")
        #expect(d.hint == "pick another id")
        #expect(d.position == 15)
        #expect(d.internalPosition == 3)
        #expect(d.internalQuery == "SELECT 1")
        #expect(d.where == "PL/pgSQL function f() line 3 at SQL statement")
        #expect(d.schemaName == "public" && d.tableName == "users" && d.columnName == "id")
        #expect(d.dataTypeName == "int4" && d.constraintName == "users_pkey")
        #expect(d.file == "nbtinsert.c" && d.line == "666" && d.routine == "_bt_check_unique")
        #expect(d["Z"] == "future")  // unknown fields are kept too
        #expect(d.fields.count == fields.count)
        #expect(!d.endsSession)
        #expect(d.description.contains("ERROR 23505: duplicate key") && d.description.contains("DETAIL: Key (id)=(1)"))
    }
}

@Suite struct PostgresDecoderBoundsTests {
    static func decodeError(_ bytes: [UInt8], atConnectionStart: Bool = false, maximum: Int = PostgresBackendDecoder.defaultMaximumMessageLength) -> WireError? {
        var decoder = PostgresBackendDecoder(maximumMessageLength: maximum, atConnectionStart: atConnectionStart)
        var index = 0
        do {
            _ = try decoder.decode(bytes, from: &index)
            return nil
        } catch let e as WireError {
            #expect(index == 0)
            return e
        } catch {
            Issue.record("unexpected error type \(error)")
            return nil
        }
    }

    @Test func twoGibibyteLengthIsAnErrorNotAnAllocation() {
        let e = Self.decodeError([UInt8(ascii: "D"), 0x80, 0, 0, 0])
        #expect(e?.code == .tooLarge)
        #expect(e?.message.contains("2147483648") == true)
        #expect(e?.message.contains("64 MiB") == true)
    }

    @Test func lengthJustOverTheBoundIsRejectedAndAtTheBoundWaits() throws {
        let limit = PostgresBackendDecoder.defaultMaximumMessageLength
        #expect(Self.decodeError([UInt8(ascii: "D")] + PostgresFrames.int32(Int32(limit + 1)))?.code == .tooLarge)
        var decoder = PostgresBackendDecoder()
        var index = 0
        #expect(try decoder.decode([UInt8(ascii: "D")] + PostgresFrames.int32(Int32(limit)), from: &index) == nil)
        #expect(Self.decodeError(PostgresFrames.dataRow(["12345"]), maximum: 8)?.code == .tooLarge)
    }

    @Test func lengthBelowFourIsMalformed() {
        for length: Int32 in [0, 1, 3, -1] {
            let e = Self.decodeError([UInt8(ascii: "Z")] + PostgresFrames.int32(length))
            #expect(e != nil, "length \(length)")
        }
        #expect(Self.decodeError([UInt8(ascii: "Z"), 0, 0, 0, 3])?.message.contains("below the minimum of 4") == true)
    }

    @Test func unknownTypeIsNamed() {
        let e = Self.decodeError(PostgresFrames.frame("q", []))
        #expect(e?.code == .malformed)
        #expect(e?.message.contains("'q'") == true)
        let binary = Self.decodeError([0x07, 0, 0, 0, 4])
        #expect(binary?.message.contains("0x07") == true)
        #expect(Self.decodeError(PostgresFrames.frame("1", []))?.message.contains("extended-query") == true)
    }

    @Test func httpAtAFrameStartIsNamed() {
        let e = Self.decodeError(Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8))
        #expect(e?.message.contains("this is an HTTP server, not PostgreSQL") == true)
        #expect(e?.message.contains("HTTP/1.1 400 Bad Request") == true)
        // At connection start a prefix of "HTTP/" waits for more rather than guessing.
        var decoder = PostgresBackendDecoder(atConnectionStart: true)
        var index = 0
        #expect((try? decoder.decode(Array("HTT".utf8), from: &index)) == .some(nil))
    }

    @Test(arguments: [
        ("S", "TLS"), ("N", "TLS"), ("\u{16}\u{3}\u{1}", "TLS handshake"), ("-ERR unknown command", "Redis/Valkey"),
        ("+OK", "Redis/Valkey"), ("SSH-2.0-OpenSSH_9.2", "SSH server"), ("garbage!", "not a PostgreSQL server"),
        ("HTTP/1.0 200 OK", "HTTP server"),
    ])
    func foreignPeersAreRecognisedAtConnectionStart(first: String, expected: String) {
        let e = Self.decodeError(Array(first.utf8) + [0, 0, 0, 0, 0, 0], atConnectionStart: true)
        #expect(e?.code == .malformed)
        #expect(e?.message.contains(expected) == true, "\(String(describing: e))")
    }

    @Test func connectionStartAcceptsAuthenticationErrorAndNegotiation() throws {
        for frame in [PostgresFrames.authOk(), PostgresFrames.error(PostgresFrames.syntaxErrorFields), PostgresFrames.frame("v", PostgresFrames.int32(0) + PostgresFrames.int32(0))] {
            var decoder = PostgresBackendDecoder(atConnectionStart: true)
            var index = 0
            #expect(try decoder.decode(frame, from: &index) != nil)
            #expect(!decoder.atConnectionStart)
        }
    }

    @Test(arguments: [
        // (frame, what the message must mention)
        (PostgresFrames.frame("D", PostgresFrames.int16(1) + PostgresFrames.int32(10) + [1, 2]), "past the end"),
        (PostgresFrames.frame("D", PostgresFrames.int16(1) + PostgresFrames.int32(-2)), "negative"),
        (PostgresFrames.frame("D", PostgresFrames.int16(-1)), "cannot fit"),
        (PostgresFrames.frame("D", PostgresFrames.int16(30000)), "cannot fit"),
        (PostgresFrames.frame("T", PostgresFrames.int16(5) + PostgresFrames.cstr("x")), "cannot fit"),
        (PostgresFrames.frame("T", PostgresFrames.int16(1) + Array("no terminator at all, but long enough".utf8)), "NUL"),
        (PostgresFrames.frame("C", Array("SELECT 1".utf8)), "NUL"),
        (PostgresFrames.frame("C", PostgresFrames.cstr("SELECT 1") + [1]), "unexpected byte"),
        (PostgresFrames.frame("Z", [UInt8(ascii: "X")]), "transaction status"),
        (PostgresFrames.frame("Z", []), "1-byte value"),
        (PostgresFrames.frame("R", PostgresFrames.int32(99)), "authentication request 99"),
        (PostgresFrames.frame("R", PostgresFrames.int32(5) + [1, 2]), "past the end"),
        (PostgresFrames.frame("R", PostgresFrames.int32(0) + [0]), "unexpected byte"),
        (PostgresFrames.frame("R", [0, 0]), "4-byte integer"),
        (PostgresFrames.frame("R", PostgresFrames.int32(10) + PostgresFrames.cstr("SCRAM-SHA-256")), "NUL"),
        (PostgresFrames.frame("K", PostgresFrames.int32(1) + [1, 2]), "secret key"),
        (PostgresFrames.frame("E", [UInt8(ascii: "M")] + Array("no end".utf8)), "NUL"),
        (PostgresFrames.frame("E", PostgresFrames.diagnosticBody([("M", "x")]) + [7]), "unexpected byte"),
        (PostgresFrames.frame("v", PostgresFrames.int32(0) + PostgresFrames.int32(1_000_000)), "cannot fit"),
        (PostgresFrames.frame("G", [0] + PostgresFrames.int16(3) + PostgresFrames.int16(0)), "column formats"),
    ] as [([UInt8], String)])
    func malformedBodiesAreRejected(frame: [UInt8], mention: String) {
        let e = Self.decodeError(frame)
        #expect(e?.code == .malformed, "\(Bytes.hex(frame))")
        #expect(e?.message.contains(mention) == true, "\(String(describing: e)) should mention \(mention)")
    }

    @Test func readerStaysFailedAfterAnError() {
        var reader = PostgresMessageReader(decoder: PostgresBackendDecoder())
        reader.append([UInt8(ascii: "D"), 0x80, 0, 0, 0])
        #expect(throws: WireError.self) { _ = try reader.next() }
        reader.append(PostgresFrames.readyForQuery())
        #expect(throws: WireError.self) { _ = try reader.next() }
    }

    @Test func partialMessageIsDescribed() throws {
        var reader = PostgresMessageReader(decoder: PostgresBackendDecoder())
        reader.append(Array(PostgresFrames.authMD5([1, 2, 3, 4]).prefix(7)))
        #expect(try reader.next() == nil)
        #expect(reader.partialMessageDescription == "7 of the 13 bytes of a 'R' (Authentication) message")
        var header = PostgresMessageReader(decoder: PostgresBackendDecoder())
        header.append([UInt8(ascii: "R"), 0])
        #expect(try header.next() == nil)
        #expect(header.partialMessageDescription == "2 byte(s) of a 'R' (Authentication) message header")
    }
}

@Suite struct PostgresFrontendTests {
    @Test func startupMessageLayout() throws {
        let bytes = try PostgresFrontend.startupMessage(user: "sage", database: "app")
        let body = PostgresFrames.int32(196_608) + PostgresFrames.cstr("user") + PostgresFrames.cstr("sage") + PostgresFrames.cstr("database") + PostgresFrames.cstr("app")
            + PostgresFrames.cstr("application_name") + PostgresFrames.cstr("sagedev") + PostgresFrames.cstr("client_encoding") + PostgresFrames.cstr("UTF8") + [0]
        #expect(bytes == PostgresFrames.int32(Int32(body.count + 4)) + body)
    }

    @Test func fixedMessages() throws {
        #expect(PostgresFrontend.sslRequest() == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        #expect(PostgresFrontend.terminate() == [UInt8(ascii: "X"), 0, 0, 0, 4])
        #expect(PostgresFrontend.cancelRequest(processID: 1, secretKey: [9, 9, 9, 9]) == [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 9, 9, 9, 9])
        #expect(try PostgresFrontend.query("SELECT 1") == PostgresFrames.frame("Q", PostgresFrames.cstr("SELECT 1")))
        #expect(try PostgresFrontend.passwordMessage("pw") == PostgresFrames.frame("p", PostgresFrames.cstr("pw")))
        #expect(try PostgresFrontend.saslInitialResponse(mechanism: "SCRAM-SHA-256", initialResponse: [1, 2])
                == PostgresFrames.frame("p", PostgresFrames.cstr("SCRAM-SHA-256") + PostgresFrames.int32(2) + [1, 2]))
        #expect(try PostgresFrontend.saslInitialResponse(mechanism: "X", initialResponse: nil) == PostgresFrames.frame("p", PostgresFrames.cstr("X") + PostgresFrames.int32(-1)))
        #expect(try PostgresFrontend.saslResponse([7]) == PostgresFrames.frame("p", [7]))
        #expect(try PostgresFrontend.copyFail("no") == PostgresFrames.frame("f", PostgresFrames.cstr("no")))
    }

    @Test func md5PasswordIsPostgresStyle() throws {
        // "md5" + md5(md5("secret" + "sage") hex + salt) hex, as libpq computes it.
        let bytes = try PostgresFrontend.md5PasswordMessage(user: "sage", password: "secret", salt: [1, 2, 3, 4])
        #expect(bytes == PostgresFrames.frame("p", PostgresFrames.cstr("md5e93013eb621c24b1d75ee07af10e1953")))
    }

    @Test func nulInsideAStringIsRefused() {
        let e = #expect(throws: WireError.self) { _ = try PostgresFrontend.query("SELECT '\0'") }
        #expect(e?.message.contains("NUL") == true)
        #expect(throws: WireError.self) { _ = try PostgresFrontend.startupMessage(user: "a\0b", database: "x") }
        #expect(throws: WireError.self) { _ = try PostgresFrontend.startupMessage(user: String(repeating: "u", count: 20_000), database: "x") }
    }
}

@Suite struct PostgresDecoderFuzzTests {
    /// Random and mutated streams built from every frame of the corpus (the bench's fuzzer, shorter), split at random
    /// points and fed to a connection state machine: the decoder must return or throw a WireError, never crash or hang.
    @Test func randomAndMutatedStreamsFromTheCorpus() {
        let stats = PostgresFuzz.run(iterations: 40_000, seed: 0x5A6E_DE7_0001, corpus: PostgresFrames.corpus.map { $0.0 })
        #expect(stats.bugCount == 0, "\(stats.bugCount) bugs, first: \(stats.bugs.joined(separator: "\n"))")
        // Both paths must be well exercised, or the fuzzer proves little.
        #expect(stats.decoded > stats.iterations / 20, "decoded \(stats.decoded) messages")
        #expect(stats.rejected > stats.iterations / 20, "rejected \(stats.rejected) streams")
    }
}
