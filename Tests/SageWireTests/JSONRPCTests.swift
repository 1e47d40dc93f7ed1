import Testing
import SageWire
import SageFuzz

/// The JSON-RPC 2.0 codec and line framer behind `sagedev mcp`.
@Suite struct JSONRPCTests {
    func decode(_ s: String) -> JSONRPC.Line { JSONRPC.decode(Array(s.utf8)) }
    func request(_ s: String) -> JSONRPC.Request? {
        if case .single(.request(let r)) = decode(s) { return r } else { return nil }
    }
    func invalidCode(_ s: String) -> Int? {
        switch decode(s) {
        case .single(.invalid(_, let e)): return e.code
        case .unreadable(let e): return e.code
        default: return nil
        }
    }

    // Examples from the JSON-RPC 2.0 specification, section 7.
    @Test func specificationVectorsDecode() {
        #expect(request(#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#)
                == JSONRPC.Request(id: .int(1), method: "subtract", params: [42, 23]))
        #expect(request(#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#)
                == JSONRPC.Request(id: .int(3), method: "subtract", params: ["subtrahend": 23, "minuend": 42]))
        #expect(request(#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#)?.isNotification == true)
        #expect(request(#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#)?.id == .string("1"))
        #expect(invalidCode(#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#) == -32700)
        #expect(invalidCode(#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#) == -32600)
        #expect(invalidCode(#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method""#) == -32700)
        #expect(invalidCode("[]") == -32600)
        #expect(decode("[1]") == .batch([.invalid(id: .null, JSONRPC.ErrorObject(.invalidRequest, "Invalid Request: a message must be a JSON object"))]))
        guard case .batch(let three) = decode("[1,2,3]") else { Issue.record("not a batch"); return }
        #expect(three.count == 3)
        guard case .batch(let mixed) = decode(#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}, {"foo": "boo"}, {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"}]"#) else {
            Issue.record("not a batch"); return
        }
        #expect(mixed.count == 4)
        if case .invalid(_, let e) = mixed[2] { #expect(e.code == -32600) } else { Issue.record("third element should be invalid") }
    }

    @Test func wrongVersionParamsAndIdsAreInvalidRequests() {
        #expect(invalidCode(#"{"jsonrpc":"1.0","method":"ping","id":1}"#) == -32600)
        #expect(invalidCode(#"{"method":"ping","id":1}"#) == -32600)
        #expect(invalidCode(#"{"jsonrpc":"2.0","method":"ping","params":3,"id":1}"#) == -32600)
        #expect(invalidCode(#"{"jsonrpc":"2.0","method":"ping","id":{"a":1}}"#) == -32600)
        #expect(invalidCode(#"{"jsonrpc":"2.0","id":9}"#) == -32600)
        if case .single(.invalid(let id, _)) = decode(#"{"jsonrpc":"1.0","method":"ping","id":7}"#) { #expect(id == .int(7)) }
    }

    @Test func responsesAndErrorsEncodeAsTheSpecificationShows() {
        #expect(JSONRPC.response(id: .int(1), result: 19).json == #"{"id":1,"jsonrpc":"2.0","result":19}"#)
        #expect(JSONRPC.response(id: .null, error: JSONRPC.ErrorObject(.parseError, "Parse error")).json
                == #"{"error":{"code":-32700,"message":"Parse error"},"id":null,"jsonrpc":"2.0"}"#)
    }

    /// Every way of cutting a stream of three lines gives the same three lines.
    @Test func framerGivesTheSameLinesWhereverTheInputIsSplit() {
        let stream = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n\n  \r\n[1,2]\r\n{\"a\":\"ü\"}\n".utf8)
        var whole = JSONRPCLineFramer()
        let expected = whole.append(stream) + whole.finish()
        #expect(expected.count == 3)
        for cut in 0...stream.count {
            for cut2 in cut...stream.count {
                var f = JSONRPCLineFramer()
                let got = f.append(stream[..<cut]) + f.append(stream[cut..<cut2]) + f.append(stream[cut2...]) + f.finish()
                #expect(got == expected, "cuts at \(cut), \(cut2)")
            }
        }
    }

    @Test func framerSkipsAnOversizeLineAndKeepsTheNext() {
        var f = JSONRPCLineFramer(limit: 16)
        var items: [JSONRPCLineFramer.Item] = []
        for _ in 0..<10 { items += f.append([UInt8](repeating: 120, count: 7)) }  // 70 bytes, no newline yet
        items += f.append(Array("yy\nok\n".utf8))
        #expect(items == [.tooLong, .line(Array("ok".utf8))])
    }

    /// Seeded mutations of valid messages: the decoder answers every one (no crash, no hang), and whatever it
    /// calls a request has a string method and an object or array for params.
    @Test func seededFuzzNeverCrashesAndKeepsTheInvariants() {
        var rng = SeededRandom(seed: 0x5A6E_D3F0)
        let seeds = [#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"logs","arguments":{"service":"backend"}}}"#,
                     #"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","method":"ping"}]"#,
                     #"{"jsonrpc":"2.0","id":2,"result":{}}"#]
        for i in 0..<3000 {
            var bytes = Array(seeds[i % seeds.count].utf8)
            for _ in 0..<(1 + rng.below(4)) {
                let at = rng.below(bytes.count)
                switch rng.below(4) {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(Array("{}[]\":,0-e\\".utf8)[rng.below(11)], at: at)
                default: bytes = Array(bytes[..<at])
                }
                if bytes.isEmpty { bytes = [123] }
            }
            let line = JSONRPC.decode(bytes)
            let messages: [JSONRPC.Message]
            switch line {
            case .single(let m): messages = [m]
            case .batch(let ms): messages = ms
            case .unreadable(let e): #expect([-32700, -32600].contains(e.code)); continue
            }
            for case .request(let r) in messages {
                switch r.params { case nil, .object?, .array?: break; default: Issue.record("params \(String(describing: r.params))") }
            }
        }
    }
}
