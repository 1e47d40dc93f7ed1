import SageFuzz
@testable import SageWire

/// The frame builders live with the fuzzers (SageFuzz); these are the expected decodings the tests check them against.
extension PostgresFrames {
    static let syntaxErrorFields: [(Character, String)] = [
        ("S", "ERROR"), ("V", "ERROR"), ("C", "42601"), ("M", "syntax error at or near \"SELEC\""), ("P", "1"),
        ("F", "scan.l"), ("L", "1244"), ("R", "scanner_yyerror"),
    ]

    /// Every message type the decoder knows, as (frame, expected message).
    static var corpus: [([UInt8], PostgresBackendMessage)] {
        let col = PostgresColumn(name: "id", tableOID: 16384, columnAttributeNumber: 1, typeOID: 23, typeSize: 4, typeModifier: -1, formatCode: 0)
        return [
            (authOk(), .authentication(.ok)),
            (authCleartext(), .authentication(.cleartextPassword)),
            (authMD5([1, 2, 3, 4]), .authentication(.md5Password(salt: [1, 2, 3, 4]))),
            (authSASL(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]), .authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))),
            (authSASLContinue("r=abc,s=c2FsdA==,i=4096"), .authentication(.saslContinue(Array("r=abc,s=c2FsdA==,i=4096".utf8)))),
            (authSASLFinal("v=c2ln"), .authentication(.saslFinal(Array("v=c2ln".utf8)))),
            (frame("R", int32(7)), .authentication(.unsupported(code: 7))),
            (parameterStatus("server_version", "18.1"), .parameterStatus(name: "server_version", value: "18.1")),
            (backendKey(4242, 0x01020304), .backendKeyData(processID: 4242, secretKey: [1, 2, 3, 4])),
            (readyForQuery("I"), .readyForQuery(.idle)),
            (readyForQuery("T"), .readyForQuery(.inTransaction)),
            (readyForQuery("E"), .readyForQuery(.failed)),
            (notice([("S", "NOTICE"), ("V", "NOTICE"), ("C", "00000"), ("M", "table \"t\" does not exist, skipping")]),
             .noticeResponse(PostgresDiagnostic([("S", "NOTICE"), ("V", "NOTICE"), ("C", "00000"), ("M", "table \"t\" does not exist, skipping")]))),
            (error(syntaxErrorFields), .errorResponse(PostgresDiagnostic(syntaxErrorFields))),
            (error([]), .errorResponse(PostgresDiagnostic(fields: [:]))),
            (rowDescription(["id", "name"]), .rowDescription([col, PostgresColumn(name: "name", tableOID: 16384, columnAttributeNumber: 1, typeOID: 23, typeSize: 4, typeModifier: -1, formatCode: 0)])),
            (rowDescription([]), .rowDescription([])),
            (dataRow(["1", nil, "", "é"]), .dataRow([Array("1".utf8), nil, [], Array("é".utf8)])),
            (dataRow([]), .dataRow([])),
            (commandComplete("SELECT 2"), .commandComplete(tag: "SELECT 2")),
            (emptyQuery(), .emptyQueryResponse),
            (frame("A", int32(7) + cstr("jobs") + cstr("hello")), .notificationResponse(processID: 7, channel: "jobs", payload: "hello")),
            (frame("v", int32(0) + int32(1) + cstr("_pq_.x")), .negotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: ["_pq_.x"])),
            (frame("G", [0] + int16(2) + int16(0) + int16(0)), .copyResponse(.into, format: 0, columnFormats: [0, 0])),
            (frame("H", [0] + int16(1) + int16(0)), .copyResponse(.outOf, format: 0, columnFormats: [0])),
            (frame("W", [1] + int16(0)), .copyResponse(.both, format: 1, columnFormats: [])),
            (frame("d", Array("1\tone\n".utf8)), .copyData(Array("1\tone\n".utf8))),
            (frame("c", []), .copyDone),
        ]
    }
}

/// The server side of SCRAM-SHA-256, computed from the password, to drive the client state machine.
struct PGSCRAMTestServer {
    let password: String
    let salt: [UInt8]
    let iterations: Int
    let serverNonceSuffix = "3rfcNHYJY1ZVvWVs7j"

    func serverFirst(clientFirst: [UInt8]) -> String {
        let text = String(decoding: clientFirst, as: UTF8.self)
        let nonce = text.split(separator: ",").first { $0.hasPrefix("r=") }!.dropFirst(2)
        return "r=\(nonce)\(serverNonceSuffix),s=\(Base64.encode(salt)),i=\(iterations)"
    }

    /// Checks the client's proof and returns the server signature for the exchange, or nil if the proof is wrong.
    func verify(clientFirst: [UInt8], serverFirst: String, clientFinal: [UInt8]) -> [UInt8]? {
        let bare = String(decoding: clientFirst, as: UTF8.self).dropFirst(3)  // "n,,"
        let final = String(decoding: clientFinal, as: UTF8.self)
        guard let proofRange = final.firstRange(of: ",p=") else { return nil }
        let withoutProof = final[..<proofRange.lowerBound]
        let proof = Base64.decode(String(final[proofRange.upperBound...])) ?? []
        let authMessage = Array("\(bare),\(serverFirst),\(withoutProof)".utf8)
        let salted = PBKDF2.sha256(password: Array(password.utf8), salt: salt, iterations: iterations)
        let clientKey = HMACSHA256.authenticationCode(for: Array("Client Key".utf8), key: salted)
        let storedKey = SHA256.hash(clientKey)
        let signature = HMACSHA256.authenticationCode(for: authMessage, key: storedKey)
        guard proof.count == 32, SHA256.hash(zip(proof, signature).map { $0 ^ $1 }) == storedKey else { return nil }
        let serverKey = HMACSHA256.authenticationCode(for: Array("Server Key".utf8), key: salted)
        return HMACSHA256.authenticationCode(for: authMessage, key: serverKey)
    }
}
