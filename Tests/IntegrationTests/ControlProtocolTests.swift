import Testing
import Foundation
import Dispatch
import SageSystem
@testable import SageCore

/// The typed control protocol: envelopes on the wire, defaults of missing arguments, and what a client says when
/// the daemon speaks another protocol version.
@Suite struct ControlProtocolTests {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func requestsCarryTheVersionIdCommandAndArguments() throws {
        let line = text(ControlProtocol.line(RequestEnvelope(id: 7, args: RestartRequest(services: ["backend"]))))
        #expect(line == #"{"args":{"services":["backend"]},"cmd":"restart","id":7,"v":2}"# + "\n")
    }

    @Test func eventsAreFlatObjectsNamedByTheirKind() throws {
        let e = ControlEvent.progress(ProgressEvent(service: "backend", state: .healthy, reason: "ready", elapsedMs: 12))
        let line = text(ControlProtocol.line(EventEnvelope(id: 3, event: e)))
        #expect(line == #"{"elapsedMs":12,"event":"progress","id":3,"reason":"ready","service":"backend","state":"healthy","v":2}"# + "\n")
        #expect(try JSONDecoder().decode(ControlEvent.self, from: Data(line.utf8)) == e)
    }

    @Test func missingArgumentsTakeTheirDefaults() throws {
        let line = ControlRequestLine(id: 1, command: "logs", bytes: Data(#"{"v":2,"id":1,"cmd":"logs"}"#.utf8))
        let logs = try line.arguments(LogsRequest.self)
        #expect(logs.services.isEmpty && logs.tail == 100 && !logs.follow)
        let reset = try ControlRequestLine(id: 1, command: "reset-db", bytes: Data(#"{"cmd":"reset-db","args":{"keepCache":true}}"#.utf8))
            .arguments(ResetDatabaseRequest.self)
        #expect(reset.keepCache && reset.seed && !reset.replay)
    }

    @Test func argumentsOfTheWrongTypeAreNamedInTheError() throws {
        let line = ControlRequestLine(id: 1, command: "logs", bytes: Data(#"{"cmd":"logs","args":{"tail":"ten"}}"#.utf8))
        #expect {
            try line.arguments(LogsRequest.self)
        } throws: { e in
            "\(e)".contains("the arguments of \"logs\"") && "\(e)".contains("tail")
        }
    }

    @Test func failuresCarryTheDaemonsVersionAndNullIds() throws {
        let line = text(ControlProtocol.line(ReplyEnvelope.failure(id: nil, "bad-request", "malformed JSON")))
        #expect(line == #"{"error":{"code":"bad-request","message":"malformed JSON"},"id":null,"ok":false,"sagedev":"\#(sagedevVersion)","v":2}"# + "\n")
    }

    /// A daemon of the previous protocol answers every request with a v1 error; the client says what to do.
    @Test func aDaemonOfAnotherProtocolVersionGetsAClearMessage() throws {
        let root = makeTempDirectory("sagedev-proto")
        defer { removeTree(root) }
        let paths = ProjectPaths(root: root)
        try paths.ensure()
        let listener = try Listener.unix(path: paths.socket)
        defer { listener.close() }
        let served = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            defer { served.signal() }
            guard let peer = try? listener.accept(deadline: .after(seconds: 10)) else { return }
            defer { peer.close() }
            var got = [UInt8]()
            while !got.contains(10), let chunk = try? peer.read(deadline: .after(seconds: 10)), !chunk.isEmpty { got += chunk }
            try? peer.write(Array(#"{"v":1,"id":null,"ok":false,"error":{"code":"bad-request","message":"protocol version 2 is not supported (this daemon speaks v1)"}}"#.utf8) + [10],
                            deadline: .after(seconds: 10))
        }
        let client = try DaemonClient.connect(paths)
        defer { client.close() }
        #expect {
            try client.send(StatusRequest(), deadline: .after(seconds: 10))
        } throws: { e in
            guard let f = e as? DaemonClient.Failure else { return false }
            return f.code == "version-mismatch" && f.message.contains("control protocol 1")
                && f.message.contains("protocol \(ControlProtocol.version)") && f.message.contains("'sagedev down' then 'sagedev up'")
        }
        #expect(served.wait(timeout: .now() + 10) == .success)
    }
}
