import Testing
@testable import SageWire

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Feeds `input` split at every byte (two chunks) and one byte at a time, through both the buffered
/// parser and the slice API, and checks that each yields `expected` exactly once, at the end.
private func expectDecodes(_ input: String, _ expected: RESPValue, limits: RESPLimits = .standard,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
    let data = bytes(input)
    for split in 0...data.count {
        var parser = RESPParser(limits: limits)
        parser.append(data[0..<split])
        let early = try parser.next()
        if split < data.count {
            #expect(early == nil, "value before the input was complete (split at \(split))", sourceLocation: sourceLocation)
            parser.append(data[split...])
            let late = try parser.next()
            #expect(late == expected, "split at \(split)", sourceLocation: sourceLocation)
        } else {
            #expect(early == expected, sourceLocation: sourceLocation)
        }
        #expect(try parser.next() == nil, sourceLocation: sourceLocation)
        #expect(parser.bufferedByteCount == 0, sourceLocation: sourceLocation)

        // The slice API: short input leaves the slice untouched.
        var slice = data[0..<split]
        let sliced = try RESPParser(limits: limits).parse(from: &slice)
        if split < data.count {
            #expect(sliced == nil, sourceLocation: sourceLocation)
            #expect(slice.count == split, "short input was consumed", sourceLocation: sourceLocation)
        } else {
            #expect(sliced == expected, sourceLocation: sourceLocation)
            #expect(slice.isEmpty, sourceLocation: sourceLocation)
        }
    }
    var byteByByte = RESPParser(limits: limits)
    var results: [RESPValue] = []
    for b in data {
        byteByByte.append([b])
        if let v = try byteByByte.next() { results.append(v) }
    }
    #expect(results == [expected], sourceLocation: sourceLocation)
}

/// Expects the complete input to be rejected with `code`, and every prefix to be either incomplete or
/// rejected with the same code (never a value).
private func expectRejects(_ input: [UInt8], _ code: WireError.Code, limits: RESPLimits = .standard,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        var p = RESPParser(limits: limits)
        p.append(input)
        let v = try p.next()
        Issue.record("expected \(code), got \(String(describing: v))", sourceLocation: sourceLocation)
    } catch let e as WireError {
        #expect(e.code == code, "\(e.message)", sourceLocation: sourceLocation)
        #expect(!e.message.isEmpty, sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
    for split in 0..<input.count {
        var p = RESPParser(limits: limits)
        p.append(input[0..<split])
        do {
            let v = try p.next()
            #expect(v == nil, "a prefix of malformed input decoded to \(String(describing: v))", sourceLocation: sourceLocation)
        } catch let e as WireError {
            #expect(e.code == code, "\(e.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }
}
private func expectRejects(_ input: String, _ code: WireError.Code = .malformed, limits: RESPLimits = .standard,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    expectRejects(bytes(input), code, limits: limits, sourceLocation: sourceLocation)
}

@Suite struct RESP2DecodingTests {
    @Test func simpleStrings() throws {
        try expectDecodes("+OK\r\n", .simpleString("OK"))
        try expectDecodes("+PONG\r\n", .simpleString("PONG"))
        try expectDecodes("+\r\n", .simpleString(""))
        try expectDecodes("+hello world\r\n", .simpleString("hello world"))
    }

    @Test func errors() throws {
        try expectDecodes("-Error message\r\n", .error("Error message"))
        try expectDecodes("-ERR unknown command 'asdf'\r\n", .error("ERR unknown command 'asdf'"))
        try expectDecodes("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                          .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        let wrongpass = try RESPParser().parseComplete(bytes("-WRONGPASS invalid username-password pair or user is disabled.\r\n"))
        #expect(wrongpass?.errorCode == "WRONGPASS")
        #expect(RESPValue.simpleString("OK").errorCode == nil)
    }

    @Test func integers() throws {
        try expectDecodes(":0\r\n", .integer(0))
        try expectDecodes(":1000\r\n", .integer(1000))
        try expectDecodes(":-1000\r\n", .integer(-1000))
        try expectDecodes(":+5\r\n", .integer(5))
        try expectDecodes(":9223372036854775807\r\n", .integer(.max))
        try expectDecodes(":-9223372036854775808\r\n", .integer(.min))
    }

    @Test func bulkStrings() throws {
        try expectDecodes("$5\r\nhello\r\n", .bulkString(bytes("hello")))
        try expectDecodes("$0\r\n\r\n", .bulkString([]))
        // Binary-safe: CR, LF and NUL inside the payload.
        try expectDecodes("$6\r\na\r\nb\0c\r\n", .bulkString([97, 13, 10, 98, 0, 99]))
        try expectDecodes("$-1\r\n", .null)
    }

    @Test func arrays() throws {
        try expectDecodes("*0\r\n", .array([]))
        try expectDecodes("*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n", .array([.bulkString(bytes("hello")), .bulkString(bytes("world"))]))
        try expectDecodes("*3\r\n:1\r\n:2\r\n:3\r\n", .array([.integer(1), .integer(2), .integer(3)]))
        try expectDecodes("*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n$5\r\nhello\r\n",
                          .array([.integer(1), .integer(2), .integer(3), .integer(4), .bulkString(bytes("hello"))]))
        try expectDecodes("*-1\r\n", .null)
        try expectDecodes("*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n",
                          .array([.array([.integer(1), .integer(2), .integer(3)]), .array([.simpleString("Hello"), .error("World")])]))
        try expectDecodes("*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nworld\r\n",
                          .array([.bulkString(bytes("hello")), .null, .bulkString(bytes("world"))]))
    }

    @Test func pipelinedValuesComeOutInOrder() throws {
        var p = RESPParser()
        p.append(bytes("+OK\r\n:1\r\n$3\r\nfoo\r\n*1\r\n+a\r\n+PO"))
        #expect(try p.next() == .simpleString("OK"))
        #expect(try p.next() == .integer(1))
        #expect(try p.next() == .bulkString(bytes("foo")))
        #expect(try p.next() == .array([.simpleString("a")]))
        #expect(try p.next() == nil)
        #expect(p.bufferedByteCount == 3)
        p.append(bytes("NG\r\n"))
        #expect(try p.next() == .simpleString("PONG"))
        #expect(try p.next() == nil)
    }

    @Test func sliceAPIConsumesExactlyOneValue() throws {
        var slice = bytes("+OK\r\n:7\r\n")[...]
        let parser = RESPParser()
        #expect(try parser.parse(from: &slice) == .simpleString("OK"))
        #expect(Array(slice) == bytes(":7\r\n"))
        #expect(try parser.parse(from: &slice) == .integer(7))
        #expect(slice.isEmpty)
        #expect(try parser.parse(from: &slice) == nil)
    }

    @Test func largeBulkStringArrivingInChunks() throws {
        let payload = [UInt8](repeating: 0x61, count: 3 << 20)
        let frame = bytes("$\(payload.count)\r\n") + payload + bytes("\r\n")
        var p = RESPParser()
        var offset = 0
        var got: RESPValue?
        while offset < frame.count {
            let end = min(frame.count, offset + 65536)
            p.append(frame[offset..<end]); offset = end
            if let v = try p.next() { got = v; #expect(offset == frame.count) }
        }
        #expect(got == .bulkString(payload))
    }
}

@Suite struct RESP3DecodingTests {
    // The examples of the RESP3 specification.
    @Test func null() throws { try expectDecodes("_\r\n", .null) }

    @Test func booleans() throws {
        try expectDecodes("#t\r\n", .boolean(true))
        try expectDecodes("#f\r\n", .boolean(false))
    }

    @Test func doubles() throws {
        try expectDecodes(",1.23\r\n", .double(1.23))
        try expectDecodes(",10\r\n", .double(10))
        try expectDecodes(",-1.5\r\n", .double(-1.5))
        try expectDecodes(",1.5e3\r\n", .double(1500))
        try expectDecodes(",1E-2\r\n", .double(0.01))
        try expectDecodes(",.5\r\n", .double(0.5))
        try expectDecodes(",inf\r\n", .double(.infinity))
        try expectDecodes(",-inf\r\n", .double(-.infinity))
        let nan = try RESPParser().parseComplete(bytes(",nan\r\n"))
        guard case .double(let d)? = nan else { Issue.record("nan did not decode to a double"); return }
        #expect(d.isNaN)
    }

    @Test func bigNumbers() throws {
        try expectDecodes("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385"))
        try expectDecodes("(-3492890328409238509324850943850943825024385\r\n", .bigNumber("-3492890328409238509324850943850943825024385"))
    }

    @Test func bulkErrors() throws {
        try expectDecodes("!21\r\nSYNTAX invalid syntax\r\n", .bulkError("SYNTAX invalid syntax"))
        #expect(RESPValue.bulkError("SYNTAX invalid syntax").errorCode == "SYNTAX")
    }

    @Test func verbatimStrings() throws {
        try expectDecodes("=15\r\ntxt:Some string\r\n", .verbatimString(format: "txt", text: "Some string"))
        try expectDecodes("=4\r\nmkd:\r\n", .verbatimString(format: "mkd", text: ""))
        #expect(RESPValue.verbatimString(format: "txt", text: "x").string == "x")
    }

    @Test func maps() throws {
        try expectDecodes("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
                          .map([RESPPair(.simpleString("first"), .integer(1)), RESPPair(.simpleString("second"), .integer(2))]))
        try expectDecodes("%0\r\n", .map([]))
    }

    @Test func sets() throws {
        try expectDecodes("~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n",
                          .set([.simpleString("orange"), .simpleString("apple"), .boolean(true), .integer(100), .integer(999)]))
    }

    @Test func attributes() throws {
        let wire = "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n"
        let attributes = [RESPPair(.simpleString("key-popularity"),
                                   .map([RESPPair(.bulkString(bytes("a")), .double(0.1923)),
                                         RESPPair(.bulkString(bytes("b")), .double(0.0012))]))]
        let expected = RESPValue.attribute(attributes, .array([.integer(2039123), .integer(9543892)]))
        try expectDecodes(wire, expected)
        #expect(expected.withoutAttributes == .array([.integer(2039123), .integer(9543892)]))
        // An attribute inside an aggregate describes the element that follows it.
        try expectDecodes("*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n",
                          .array([.integer(1), .attribute([RESPPair(.simpleString("ttl"), .integer(3600))], .integer(2))]))
    }

    @Test func pushes() throws {
        try expectDecodes(">4\r\n+pubsub\r\n+message\r\n+somechannel\r\n+this is the message\r\n",
                          .push([.simpleString("pubsub"), .simpleString("message"), .simpleString("somechannel"),
                                 .simpleString("this is the message")]))
    }

    @Test func streamedStrings() throws {
        try expectDecodes("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", .bulkString(bytes("Hello word")))
        try expectDecodes("$?\r\n;0\r\n", .bulkString([]))
    }

    @Test func streamedAggregates() throws {
        try expectDecodes("*?\r\n:1\r\n:2\r\n:3\r\n.\r\n", .array([.integer(1), .integer(2), .integer(3)]))
        try expectDecodes("~?\r\n+a\r\n.\r\n", .set([.simpleString("a")]))
        try expectDecodes("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n",
                          .map([RESPPair(.simpleString("a"), .integer(1)), RESPPair(.simpleString("b"), .integer(2))]))
    }

    @Test func helloReplyShape() throws {
        let wire = "%3\r\n$6\r\nserver\r\n$6\r\nvalkey\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n"
        let v = try RESPParser().parseComplete(bytes(wire))
        guard case .map(let pairs)? = v else { Issue.record("not a map: \(String(describing: v))"); return }
        #expect(pairs.count == 3)
        #expect(pairs[0].value.string == "valkey")
    }
}

@Suite struct RESPMalformedInputTests {
    @Test func unknownTypeBytes() {
        expectRejects("?\r\n")
        expectRejects("PONG\r\n")
        expectRejects([0x00, 0x01, 0x02], .malformed)
        expectRejects(".\r\n")
    }

    @Test func httpPeerIsNamed() throws {
        var p = RESPParser()
        p.append(bytes("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
        let e = #expect(throws: WireError.self) { _ = try p.next() }
        #expect(e?.code == .malformed)
        #expect(e?.message.contains("speaks HTTP") == true)
    }

    @Test func badNumbers() {
        expectRejects(":abc\r\n")
        expectRejects(":\r\n")
        expectRejects(":-\r\n")
        expectRejects(":12a\r\n")
        expectRejects(":1 2\r\n")
        expectRejects(":99999999999999999999\r\n")
        expectRejects(":9223372036854775808\r\n")
    }

    @Test func badLengths() {
        expectRejects("$-2\r\n")
        expectRejects("$abc\r\n")
        expectRejects("$+5\r\nhello\r\n")
        expectRejects("$\r\n")
        expectRejects("*-2\r\n")
        expectRejects("*x\r\n")
        expectRejects("%-1\r\n")
        expectRejects("!-1\r\n")
        expectRejects("=-1\r\n")
        expectRejects(">?\r\n")
        expectRejects("|?\r\n")
        expectRejects("$99999999999999999999999\r\n")
    }

    @Test func missingOrWrongTerminators() {
        expectRejects("$5\r\nhelloXX")
        expectRejects("$5\r\nhello\rX")
        expectRejects("+OK\rX")
        expectRejects("+OK\n")
        expectRejects(":1\n")
        expectRejects("*1\r\n+a\n")
    }

    @Test func badRESP3Scalars() {
        expectRejects("#x\r\n")
        expectRejects("#tt\r\n")
        expectRejects("#\r\n")
        expectRejects("_x\r\n")
        expectRejects(",abc\r\n")
        expectRejects(",0x1p3\r\n")
        expectRejects(",1e\r\n")
        expectRejects(",\r\n")
        expectRejects(",1.2.3\r\n")
        expectRejects("(12a\r\n")
        expectRejects("(\r\n")
        expectRejects("(-\r\n")
        expectRejects("=3\r\nabc\r\n")
        expectRejects("=5\r\ntxtxx\r\n")
    }

    @Test func badStreams() {
        expectRejects("$?\r\nX")
        expectRejects("$?\r\n;-1\r\n")
        expectRejects("$?\r\n;3\r\nabcXY")
        expectRejects("%?\r\n+a\r\n.\r\n")
        expectRejects("*?\r\n.x\r\n")
        expectRejects("*1\r\n.\r\n")
    }

    @Test func leftoverBytesAfterACompleteValue() throws {
        #expect(throws: WireError.self) { _ = try RESPParser().parseComplete(bytes("+OK\r\n+extra")) }
    }
}

@Suite struct RESPBoundsTests {
    static let small = RESPLimits(maxBulkLength: 16, maxAggregateCount: 4, maxDepth: 3, maxLineLength: 32)

    @Test func bulkLengthOverTheLimitFailsOnTheHeaderAlone() {
        // The 2 GiB prefix of a hostile peer: rejected before any payload, nothing allocated.
        expectRejects("$2147483648\r\n", .tooLarge)
        expectRejects("$17\r\n", .tooLarge, limits: Self.small)
        expectRejects("!17\r\n", .tooLarge, limits: Self.small)
        expectRejects("=17\r\n", .tooLarge, limits: Self.small)
        expectRejects("$536870913\r\n", .tooLarge)
    }

    @Test func bulkLengthAtTheLimitDecodes() throws {
        let s = String(repeating: "x", count: 16)
        try expectDecodes("$16\r\n\(s)\r\n", .bulkString(bytes(s)), limits: Self.small)
    }

    @Test func streamedStringIsBoundedInTotal() {
        expectRejects("$?\r\n;10\r\n0123456789\r\n;10\r\n", .tooLarge, limits: Self.small)
    }

    @Test func aggregateCountIsBounded() throws {
        expectRejects("*5\r\n", .tooLarge, limits: Self.small)
        expectRejects("%5\r\n", .tooLarge, limits: Self.small)
        expectRejects("~5\r\n", .tooLarge, limits: Self.small)
        expectRejects(">5\r\n", .tooLarge, limits: Self.small)
        expectRejects("|5\r\n", .tooLarge, limits: Self.small)
        expectRejects("*4294967296\r\n", .tooLarge)
        expectRejects("*?\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n", .tooLarge, limits: Self.small)
        try expectDecodes("*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n", .array([.integer(1), .integer(2), .integer(3), .integer(4)]), limits: Self.small)
    }

    @Test func nestingDepthIsBounded() throws {
        try expectDecodes("*1\r\n*1\r\n*1\r\n:1\r\n", .array([.array([.array([.integer(1)])])]), limits: Self.small)
        expectRejects("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", .tooDeep, limits: Self.small)
        expectRejects("|0\r\n|0\r\n|0\r\n|0\r\n:1\r\n", .tooDeep, limits: Self.small)
        // Deep nesting under the standard limits fails cleanly instead of exhausting the stack.
        expectRejects(String(repeating: "*1\r\n", count: 200), .tooDeep)
        var p = RESPParser()
        p.append(bytes(String(repeating: "*1\r\n", count: 100_000)))
        #expect(throws: WireError.self) { _ = try p.next() }
    }

    @Test func lineLengthIsBoundedBeforeTheTerminatorArrives() {
        expectRejects("+" + String(repeating: "a", count: 33), .tooLarge, limits: Self.small)
        expectRejects("-" + String(repeating: "a", count: 33), .tooLarge, limits: Self.small)
        expectRejects(":" + String(repeating: "1", count: 40), .tooLarge)
        expectRejects("$" + String(repeating: "1", count: 40), .tooLarge)
        var p = RESPParser(limits: .probe)
        p.append(bytes("+" + String(repeating: "a", count: RESPLimits.probe.maxLineLength + 1)))
        let e = #expect(throws: WireError.self) { _ = try p.next() }
        #expect(e?.code == .tooLarge)
    }

    @Test func probeLimitsAreTighterThanStandard() {
        #expect(RESPLimits.probe.maxBulkLength < RESPLimits.standard.maxBulkLength)
        #expect(RESPLimits.standard.maxBulkLength == 512 << 20)
        expectRejects("$\(RESPLimits.probe.maxBulkLength + 1)\r\n", .tooLarge, limits: .probe)
    }
}

@Suite struct RESPEncoderTests {
    @Test func commandsAreArraysOfBulkStrings() {
        #expect(RESPEncoder.command(["PING"]) == bytes("*1\r\n$4\r\nPING\r\n"))
        #expect(RESPEncoder.command(["AUTH", "user", "s3cret"]) == bytes("*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$6\r\ns3cret\r\n"))
        #expect(RESPEncoder.command(["SET", "k", ""]) == bytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"))
        #expect(RESPEncoder.command(["ECHO", "é"]) == bytes("*2\r\n$4\r\nECHO\r\n$2\r\né\r\n"))
        #expect(RESPEncoder.command(bytes: [[0, 13, 10]]) == [42, 49, 13, 10, 36, 51, 13, 10, 0, 13, 10, 13, 10])
        #expect(RESPEncoder.command([]) == bytes("*0\r\n"))
    }

    @Test func encodedCommandsDecodeBack() throws {
        let args = ["AUTH", "default", "p@ss word\r\n*1"]
        let v = try RESPParser().parseComplete(RESPEncoder.command(args))
        #expect(v == .array(args.map { .bulkString(bytes($0)) }))
    }

    @Test func everyValueRoundTrips() throws {
        let values: [RESPValue] = [
            .simpleString("OK"), .error("ERR x"), .integer(-42), .bulkString([0, 13, 10]), .null,
            .array([.integer(1), .array([])]), .map([RESPPair(.simpleString("k"), .double(1.5))]),
            .set([.boolean(true), .boolean(false)]), .double(-.infinity), .double(1e-05), .double(3),
            .bigNumber("-123456789012345678901234567890"), .bulkError("SYNTAX bad"),
            .verbatimString(format: "txt", text: "héllo\r\n"), .push([.simpleString("message")]),
            .attribute([RESPPair(.simpleString("a"), .integer(1))], .simpleString("v")),
        ]
        for v in values {
            #expect(try RESPParser().parseComplete(RESPEncoder.encode(v)) == v, "\(v)")
        }
    }
}
