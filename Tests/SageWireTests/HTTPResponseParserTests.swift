import Testing
@testable import SageWire

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Feeds the response split at every byte, then byte by byte, and checks each yields `expected`
/// exactly when the last byte arrives (or at end of stream when `endsAtClose`).
private func expectParses(_ wire: String, _ expected: HTTPResponse, limits: HTTPLimits = .standard,
                          expectsBody: Bool = true, endsAtClose: Bool = false,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
    let data = bytes(wire)
    for split in 0...data.count {
        var p = HTTPResponseParser(limits: limits, expectsBody: expectsBody)
        let first = try p.received(data[0..<split])
        if split < data.count {
            #expect(first == nil, "complete before all bytes arrived (split \(split))", sourceLocation: sourceLocation)
        }
        var got = try first ?? p.received(data[split...])
        if endsAtClose {
            #expect(got == nil, sourceLocation: sourceLocation)
            got = try p.receivedEndOfStream()
        }
        #expect(got == expected, "split \(split)", sourceLocation: sourceLocation)
    }
    var p = HTTPResponseParser(limits: limits, expectsBody: expectsBody)
    var got: HTTPResponse?
    for (i, b) in data.enumerated() {
        let r = try p.received([b])
        if r != nil && got == nil {
            got = r
            if !endsAtClose { #expect(i == data.count - 1, "completed early at byte \(i)", sourceLocation: sourceLocation) }
        }
    }
    if endsAtClose { got = try p.receivedEndOfStream() }
    #expect(got == expected, sourceLocation: sourceLocation)
}

private func expectFails(_ wire: [UInt8], _ code: WireError.Code, containing text: String = "", limits: HTTPLimits = .standard,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    var p = HTTPResponseParser(limits: limits)
    do {
        let r = try p.received(wire)
        Issue.record("expected \(code), got \(String(describing: r))", sourceLocation: sourceLocation)
    } catch let e as WireError {
        #expect(e.code == code, "\(e.message)", sourceLocation: sourceLocation)
        // No text means any message: Foundation's contains("") is false (the standard library's is true), and which one
        // is picked depends on what the target imports.
        #expect(text.isEmpty || e.message.contains(text), "\(e.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}
private func expectFails(_ wire: String, _ code: WireError.Code = .malformed, containing text: String = "",
                         limits: HTTPLimits = .standard, sourceLocation: SourceLocation = #_sourceLocation) {
    expectFails(bytes(wire), code, containing: text, limits: limits, sourceLocation: sourceLocation)
}

@Suite struct HTTPResponseFramingTests {
    @Test func contentLength() throws {
        try expectParses("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                         HTTPResponse(status: 200, reason: "OK",
                                      headers: [HTTPHeader("Content-Type", "text/plain"), HTTPHeader("Content-Length", "5")],
                                      body: bytes("hello")))
    }

    @Test func emptyBodies() throws {
        try expectParses("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                         HTTPResponse(status: 200, reason: "OK", headers: [HTTPHeader("Content-Length", "0")]))
        try expectParses("HTTP/1.1 204 No Content\r\n\r\n", HTTPResponse(status: 204, reason: "No Content"))
        try expectParses("HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n",
                         HTTPResponse(status: 304, reason: "Not Modified", headers: [HTTPHeader("Content-Length", "12")]))
        try expectParses("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
                         HTTPResponse(status: 200, reason: "OK", headers: [HTTPHeader("Content-Length", "12")]),
                         expectsBody: false)
    }

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
        try expectParses(wire, HTTPResponse(status: 200, reason: "OK", headers: [HTTPHeader("Transfer-Encoding", "chunked")],
                                            body: bytes("Wikipedia in\r\n\r\nchunks.")))
        try expectParses("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                         HTTPResponse(status: 200, reason: "OK", headers: [HTTPHeader("Transfer-Encoding", "gzip, chunked")]))
    }

    @Test func readUntilClose() throws {
        try expectParses("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close",
                         HTTPResponse(version: "HTTP/1.0", status: 200, reason: "OK", headers: [HTTPHeader("Server", "x")],
                                      body: bytes("body until close")), endsAtClose: true)
        try expectParses("HTTP/1.1 200 OK\r\n\r\n", HTTPResponse(status: 200, reason: "OK"), endsAtClose: true)
    }

    @Test func interimResponsesAreSkipped() throws {
        try expectParses("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                         HTTPResponse(status: 201, reason: "Created", headers: [HTTPHeader("Content-Length", "2")], body: bytes("ok")))
    }

    @Test func statusLineVariantsAndHeaderLookup() throws {
        try expectParses("HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n",
                         HTTPResponse(status: 503, headers: [HTTPHeader("Content-Length", "0")]))
        try expectParses("HTTP/1.1 404 Not Found Here\nX-Thing:   spaced value \t\ncontent-length: 1\n\nx",
                         HTTPResponse(status: 404, reason: "Not Found Here",
                                      headers: [HTTPHeader("X-Thing", "spaced value"), HTTPHeader("content-length", "1")],
                                      body: bytes("x")))
        let r = HTTPResponse(status: 200, reason: "OK", headers: [HTTPHeader("X-Version", "1.2.3")])
        #expect(r.header("x-version") == "1.2.3")
        #expect(r.header("missing") == nil)
        #expect(r.isSuccess && r.statusLine == "200 OK")
        try expectParses("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
                         HTTPResponse(status: 200, reason: "OK", headers: [HTTPHeader("Content-Length", "3, 3")], body: bytes("abc")))
    }

    @Test func bytesAfterACompleteResponseAreIgnored() throws {
        var p = HTTPResponseParser()
        let r = try p.received(bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"))
        #expect(r?.body == bytes("ok"))
        #expect(try p.received(bytes("more")) == r)
        #expect(try p.receivedEndOfStream() == r)
    }
}

@Suite struct HTTPResponseBoundsTests {
    static let small = HTTPLimits(maxHeadBytes: 64, maxHeaderCount: 3, maxBodyBytes: 8)

    @Test func bodyIsCappedForEveryFraming() throws {
        // The response completes as soon as the cap is reached: the rest is never read.
        var fixed = HTTPResponseParser(limits: Self.small)
        #expect(try fixed.received(bytes("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456")) == nil)
        let f = try fixed.received(bytes("7"))
        #expect(f == HTTPResponse(status: 200, reason: "OK", headers: [HTTPHeader("Content-Length", "20")],
                                  body: bytes("01234567"), bodyTruncated: true))
        var chunked = HTTPResponseParser(limits: Self.small)
        let c = try chunked.received(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n"))
        #expect(c?.body == bytes("abcdefgh") && c?.bodyTruncated == true)
        var close = HTTPResponseParser(limits: Self.small)
        let u = try close.received(bytes("HTTP/1.1 200 OK\r\n\r\n0123456789"))
        #expect(u?.body == bytes("01234567") && u?.bodyTruncated == true)
    }

    @Test func hugeDeclaredLengthDoesNotAllocate() throws {
        var p = HTTPResponseParser(limits: Self.small)
        #expect(try p.received(bytes("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999\r\n\r\nab")) == nil)
        let r = try p.received(bytes("cdefghij"))
        #expect(r?.body == bytes("abcdefgh") && r?.bodyTruncated == true)
    }

    @Test func headSizeIsBoundedBeforeItEnds() {
        expectFails("HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 100), .tooLarge, limits: Self.small)
        expectFails("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", .tooLarge, limits: Self.small)
        expectFails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "1", count: 2000), .tooLarge)
    }
}

@Suite struct HTTPResponseMalformedTests {
    @Test func nonHTTPPeersFailOnTheirFirstBytes() {
        expectFails("-ERR wrong number of arguments for 'get' command\r\n", containing: "RESP")
        expectFails("+PONG\r\n", containing: "Valkey")
        expectFails([UInt8(ascii: "E"), 0, 0, 0, 0x60, UInt8(ascii: "S")], .malformed, containing: "PostgreSQL")
        expectFails([0x16, 0x03, 0x01, 0x00], .malformed, containing: "TLS")
        expectFails("SSH-2.0-OpenSSH_9.2\r\n", containing: "not an HTTP response")
        expectFails([0xFF], .malformed)
        expectFails("HTTPS/1.1 200 OK\r\n\r\n")
    }

    @Test func invalidStatusLines() {
        expectFails("HTTP/1.1 abc OK\r\n\r\n", containing: "status line")
        expectFails("HTTP/1.1 20 OK\r\n\r\n")
        expectFails("HTTP/1.1 2000 OK\r\n\r\n")
        expectFails("HTTP/x.y 200 OK\r\n\r\n")
        expectFails("HTTP/1.1\r\n\r\n")
        expectFails("HTTP/1.1 099 Low\r\n\r\n")
    }

    @Test func invalidHeaders() {
        expectFails("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", containing: "header")
        expectFails("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n")
        expectFails("HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n")
        expectFails("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", containing: "Content-Length")
        expectFails("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
        expectFails("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n")
        expectFails("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
    }

    @Test func invalidChunks() {
        expectFails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", containing: "chunk size")
        expectFails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", containing: "chunk")
        expectFails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n")
        expectFails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rX")
    }

    @Test func endOfStreamBeforeTheResponseIsComplete() throws {
        var silent = HTTPResponseParser()
        let e1 = #expect(throws: WireError.self) { _ = try silent.receivedEndOfStream() }
        #expect(e1?.code == .unexpected && e1?.message.contains("without sending") == true)

        var midHead = HTTPResponseParser()
        #expect(try midHead.received(bytes("HTTP/1.1 200 O")) == nil)
        let e2 = #expect(throws: WireError.self) { _ = try midHead.receivedEndOfStream() }
        #expect(e2?.code == .unexpected && e2?.message.contains("headers") == true)

        var midBody = HTTPResponseParser()
        #expect(try midBody.received(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")) == nil)
        let e3 = #expect(throws: WireError.self) { _ = try midBody.receivedEndOfStream() }
        #expect(e3?.code == .unexpected && e3?.message.contains("body") == true)
    }
}
