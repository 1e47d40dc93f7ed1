import Testing
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
        for (frame, expected) in PGFrames.corpus {
            for split in 0...frame.count {
                let messages = try Self.decodeAll(frame, split: split)
                #expect(messages == [expected], "frame \(Bytes.hex(frame)) split at \(split)")
            }
        }
    }

    @Test func wholeConversationSplitAtEveryByteAndFedByteByByte() throws {
        let corpus = PGFrames.corpus
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
        for (frame, expected) in PGFrames.corpus {
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
        guard case .errorResponse(let d)? = try decoder.decode(PGFrames.error(fields), from: &index) else {
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
        #expect(Self.decodeError([UInt8(ascii: "D")] + PGFrames.int32(Int32(limit + 1)))?.code == .tooLarge)
        var decoder = PostgresBackendDecoder()
        var index = 0
        #expect(try decoder.decode([UInt8(ascii: "D")] + PGFrames.int32(Int32(limit)), from: &index) == nil)
        #expect(Self.decodeError(PGFrames.dataRow(["12345"]), maximum: 8)?.code == .tooLarge)
    }

    @Test func lengthBelowFourIsMalformed() {
        for length: Int32 in [0, 1, 3, -1] {
            let e = Self.decodeError([UInt8(ascii: "Z")] + PGFrames.int32(length))
            #expect(e != nil, "length \(length)")
        }
        #expect(Self.decodeError([UInt8(ascii: "Z"), 0, 0, 0, 3])?.message.contains("below the minimum of 4") == true)
    }

    @Test func unknownTypeIsNamed() {
        let e = Self.decodeError(PGFrames.frame("q", []))
        #expect(e?.code == .malformed)
        #expect(e?.message.contains("'q'") == true)
        let binary = Self.decodeError([0x07, 0, 0, 0, 4])
        #expect(binary?.message.contains("0x07") == true)
        #expect(Self.decodeError(PGFrames.frame("1", []))?.message.contains("extended-query") == true)
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
        for frame in [PGFrames.authOk(), PGFrames.error(PGFrames.syntaxErrorFields), PGFrames.frame("v", PGFrames.int32(0) + PGFrames.int32(0))] {
            var decoder = PostgresBackendDecoder(atConnectionStart: true)
            var index = 0
            #expect(try decoder.decode(frame, from: &index) != nil)
            #expect(!decoder.atConnectionStart)
        }
    }

    @Test(arguments: [
        // (frame, what the message must mention)
        (PGFrames.frame("D", PGFrames.int16(1) + PGFrames.int32(10) + [1, 2]), "past the end"),
        (PGFrames.frame("D", PGFrames.int16(1) + PGFrames.int32(-2)), "negative"),
        (PGFrames.frame("D", PGFrames.int16(-1)), "cannot fit"),
        (PGFrames.frame("D", PGFrames.int16(30000)), "cannot fit"),
        (PGFrames.frame("T", PGFrames.int16(5) + PGFrames.cstr("x")), "cannot fit"),
        (PGFrames.frame("T", PGFrames.int16(1) + Array("no terminator at all, but long enough".utf8)), "NUL"),
        (PGFrames.frame("C", Array("SELECT 1".utf8)), "NUL"),
        (PGFrames.frame("C", PGFrames.cstr("SELECT 1") + [1]), "unexpected byte"),
        (PGFrames.frame("Z", [UInt8(ascii: "X")]), "transaction status"),
        (PGFrames.frame("Z", []), "1-byte value"),
        (PGFrames.frame("R", PGFrames.int32(99)), "authentication request 99"),
        (PGFrames.frame("R", PGFrames.int32(5) + [1, 2]), "past the end"),
        (PGFrames.frame("R", PGFrames.int32(0) + [0]), "unexpected byte"),
        (PGFrames.frame("R", [0, 0]), "4-byte integer"),
        (PGFrames.frame("R", PGFrames.int32(10) + PGFrames.cstr("SCRAM-SHA-256")), "NUL"),
        (PGFrames.frame("K", PGFrames.int32(1) + [1, 2]), "secret key"),
        (PGFrames.frame("E", [UInt8(ascii: "M")] + Array("no end".utf8)), "NUL"),
        (PGFrames.frame("E", PGFrames.diagnosticBody([("M", "x")]) + [7]), "unexpected byte"),
        (PGFrames.frame("v", PGFrames.int32(0) + PGFrames.int32(1_000_000)), "cannot fit"),
        (PGFrames.frame("G", [0] + PGFrames.int16(3) + PGFrames.int16(0)), "column formats"),
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
        reader.append(PGFrames.readyForQuery())
        #expect(throws: WireError.self) { _ = try reader.next() }
    }

    @Test func partialMessageIsDescribed() throws {
        var reader = PostgresMessageReader(decoder: PostgresBackendDecoder())
        reader.append(Array(PGFrames.authMD5([1, 2, 3, 4]).prefix(7)))
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
        let body = PGFrames.int32(196_608) + PGFrames.cstr("user") + PGFrames.cstr("sage") + PGFrames.cstr("database") + PGFrames.cstr("app")
            + PGFrames.cstr("application_name") + PGFrames.cstr("sagedev") + PGFrames.cstr("client_encoding") + PGFrames.cstr("UTF8") + [0]
        #expect(bytes == PGFrames.int32(Int32(body.count + 4)) + body)
    }

    @Test func fixedMessages() throws {
        #expect(PostgresFrontend.sslRequest() == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        #expect(PostgresFrontend.terminate() == [UInt8(ascii: "X"), 0, 0, 0, 4])
        #expect(PostgresFrontend.cancelRequest(processID: 1, secretKey: [9, 9, 9, 9]) == [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 9, 9, 9, 9])
        #expect(try PostgresFrontend.query("SELECT 1") == PGFrames.frame("Q", PGFrames.cstr("SELECT 1")))
        #expect(try PostgresFrontend.passwordMessage("pw") == PGFrames.frame("p", PGFrames.cstr("pw")))
        #expect(try PostgresFrontend.saslInitialResponse(mechanism: "SCRAM-SHA-256", initialResponse: [1, 2])
                == PGFrames.frame("p", PGFrames.cstr("SCRAM-SHA-256") + PGFrames.int32(2) + [1, 2]))
        #expect(try PostgresFrontend.saslInitialResponse(mechanism: "X", initialResponse: nil) == PGFrames.frame("p", PGFrames.cstr("X") + PGFrames.int32(-1)))
        #expect(try PostgresFrontend.saslResponse([7]) == PGFrames.frame("p", [7]))
        #expect(try PostgresFrontend.copyFail("no") == PGFrames.frame("f", PGFrames.cstr("no")))
    }

    @Test func md5PasswordIsPostgresStyle() throws {
        // "md5" + md5(md5("secret" + "sage") hex + salt) hex, as libpq computes it.
        let bytes = try PostgresFrontend.md5PasswordMessage(user: "sage", password: "secret", salt: [1, 2, 3, 4])
        #expect(bytes == PGFrames.frame("p", PGFrames.cstr("md5e93013eb621c24b1d75ee07af10e1953")))
    }

    @Test func nulInsideAStringIsRefused() {
        let e = #expect(throws: WireError.self) { _ = try PostgresFrontend.query("SELECT '\0'") }
        #expect(e?.message.contains("NUL") == true)
        #expect(throws: WireError.self) { _ = try PostgresFrontend.startupMessage(user: "a\0b", database: "x") }
        #expect(throws: WireError.self) { _ = try PostgresFrontend.startupMessage(user: String(repeating: "u", count: 20_000), database: "x") }
    }
}

@Suite struct PostgresDecoderFuzzTests {
    /// Random and mutated frames, split at random points: the decoder must return or throw, never crash or hang.
    @Test func twoHundredThousandRandomAndMutatedFrames() {
        var rng = PGFuzzRandom(seed: 0x5A6E_DE7_0001)
        let corpus = PGFrames.corpus.map { $0.0 }
        var decoded = 0, rejected = 0
        for iteration in 0..<200_000 {
            var input: [UInt8]
            switch iteration % 4 {
            case 0:
                // Pure noise, with a plausible type byte half the time.
                let n = Int.random(in: 0...40, using: &rng)
                input = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                // A valid frame with a few bytes flipped.
                input = corpus.randomElement(using: &rng)!
                for _ in 0...Int.random(in: 0...3, using: &rng) where !input.isEmpty {
                    input[Int.random(in: 0..<input.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 2:
                // Several valid frames, truncated or with junk appended.
                input = (0..<Int.random(in: 1...4, using: &rng)).flatMap { _ in corpus.randomElement(using: &rng)! }
                if Bool.random(using: &rng) { input.removeLast(Int.random(in: 0...input.count, using: &rng)) }
                else { input += (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            default:
                // A valid frame whose length field is rewritten to something odd.
                input = corpus.randomElement(using: &rng)!
                let lengths: [UInt32] = [0, 3, 4, 5, 0x7fff_ffff, 0xffff_ffff, 0x0400_0001, UInt32.random(in: 0...200, using: &rng)]
                let l = lengths.randomElement(using: &rng)!
                input[1] = UInt8(truncatingIfNeeded: l >> 24); input[2] = UInt8(truncatingIfNeeded: l >> 16)
                input[3] = UInt8(truncatingIfNeeded: l >> 8); input[4] = UInt8(truncatingIfNeeded: l)
            }
            var reader = PostgresMessageReader(decoder: PostgresBackendDecoder(atConnectionStart: iteration % 3 == 0))
            let split = input.isEmpty ? 0 : Int.random(in: 0...input.count, using: &rng)
            do {
                reader.append(Array(input[..<split]))
                while try reader.next() != nil { decoded += 1 }
                reader.append(Array(input[split...]))
                while try reader.next() != nil { decoded += 1 }
            } catch is WireError {
                rejected += 1
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(decoded > 10_000)
        #expect(rejected > 10_000)
    }
}
