import Testing
@testable import SageWire

private func hex(_ bytes: [UInt8]) -> String { Bytes.hex(bytes) }
private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
private func unhex(_ s: String) -> [UInt8] {
    let chars = Array(s.utf8)
    return stride(from: 0, to: chars.count, by: 2).map { UInt8(String(decoding: chars[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

@Suite struct SHA256Tests {
    // RFC 6234 section 8.5 (TEST1, TEST2_1, TEST3, TEST4) plus the empty message.
    @Test(arguments: [
        ("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("0123456701234567012345670123456701234567012345670123456701234567", 10, "594847328451bdfa85056225462cc1d867d877fb388df0ce35f25ab5562bfbb5"),
    ])
    func rfc6234Vectors(message: String, repeatCount: Int, expected: String) {
        var all = [UInt8]()
        for _ in 0..<repeatCount { all += bytes(message) }
        #expect(hex(SHA256.hash(all)) == expected)
        // Incrementally, one repetition per update, as RFC 6234's test driver does.
        var h = SHA256()
        for _ in 0..<repeatCount { h.update(bytes(message)) }
        #expect(hex(h.finalize()) == expected)
    }

    @Test func millionAs() {
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        #expect(hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))) == expected)
        var h = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(chunk) }
        #expect(hex(h.finalize()) == expected)
    }

    @Test func everySplitGivesTheSameDigest() {
        let message = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let expected = SHA256.hash(message)
        for split in 0...message.count {
            var h = SHA256()
            h.update(message[0..<split])
            h.update(message[split...])
            #expect(h.finalize() == expected, "split at \(split)")
        }
        // Lengths around the padding boundary (55, 56, 63, 64, 65 bytes) differ from a wrong implementation.
        #expect(hex(SHA256.hash([UInt8](repeating: 0x61, count: 55))) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        #expect(hex(SHA256.hash([UInt8](repeating: 0x61, count: 56))) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        #expect(hex(SHA256.hash([UInt8](repeating: 0x61, count: 64))) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
    }
}

@Suite struct HMACSHA256Tests {
    // RFC 4231 section 4, test cases 1-7 (case 5 is truncated to 128 bits by the RFC).
    @Test(arguments: [
        ([UInt8](repeating: 0x0b, count: 20), bytes("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (bytes("Jefe"), bytes("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (Array(1...25), [UInt8](repeating: 0xcd, count: 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        ([UInt8](repeating: 0x0c, count: 20), bytes("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"),
        ([UInt8](repeating: 0xaa, count: 131), bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xaa, count: 131),
         bytes("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ] as [([UInt8], [UInt8], String)])
    func rfc4231Vectors(key: [UInt8], data: [UInt8], expected: String) {
        let mac = hex(HMACSHA256.authenticationCode(for: data, key: key))
        #expect(mac.hasPrefix(expected))
        var incremental = HMACSHA256(key: key)
        for b in data { incremental.update([b]) }
        #expect(hex(incremental.finalize()) == mac)
    }
}

@Suite struct PBKDF2Tests {
    // The widely published PBKDF2-HMAC-SHA256 vectors (RFC 6070's inputs with SHA-256) and RFC 7914 section 11.
    @Test(arguments: [
        ("password", "salt", 1, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
        ("password", "salt", 2, 32, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"),
        ("password", "salt", 4096, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
        ("passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 40,
         "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"),
        ("pass\0word", "sa\0lt", 4096, 16, "89b69d0516f829893c696226650a8687"),
        ("passwd", "salt", 1, 64,
         "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"),
    ])
    func knownVectors(password: String, salt: String, iterations: Int, length: Int, expected: String) {
        #expect(hex(PBKDF2.sha256(password: bytes(password), salt: bytes(salt), iterations: iterations, keyByteCount: length)) == expected)
    }

    @Test func longPasswordIsHashedFirst() {
        // A key longer than the block is replaced by its SHA-256, so both must derive the same bytes.
        let long = [UInt8](repeating: 0x70, count: 100)
        #expect(PBKDF2.sha256(password: long, salt: bytes("salt"), iterations: 3)
                == PBKDF2.sha256(password: SHA256.hash(long), salt: bytes("salt"), iterations: 3))
    }
}

@Suite struct MD5Tests {
    // RFC 1321 appendix A.5.
    @Test(arguments: [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
        ("12345678901234567890123456789012345678901234567890123456789012345678901234567890", "57edf4a22be3c955ac49da2e2107b67a"),
    ])
    func rfc1321Vectors(message: String, expected: String) {
        #expect(MD5.hexDigest(bytes(message)) == expected)
    }
}

@Suite struct Base64Tests {
    @Test func roundTripsEveryLengthAndRejectsJunk() {
        #expect(Base64.encode(bytes("foobar")) == "Zm9vYmFy")
        #expect(Base64.encode(bytes("fo")) == "Zm8=")
        #expect(Base64.encode(bytes("f")) == "Zg==")
        for n in 0..<40 {
            let data = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64.decode(Base64.encode(data)) == data)
        }
        for junk in ["Zg=", "Z===", "Zg==Zg==", "Z!==", "=Zg=", "Zm9v YmFy", "Zh=a"] {
            #expect(Base64.decode(junk) == nil, "\(junk)")
        }
    }
}

@Suite struct SCRAMTests {
    // RFC 7677 section 3: user "user", password "pencil".
    static let clientNonce = "rOprNGfwEbeRWgbNEkqO"
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    static let clientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static let serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

    @Test func rfc7677ExchangeEndToEnd() throws {
        var client = SCRAMSHA256Client(username: "user", password: "pencil", clientNonce: Self.clientNonce)
        #expect(String(decoding: client.clientFirstMessage(), as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let final = try client.receive(serverFirst: bytes(Self.serverFirst))
        #expect(String(decoding: final, as: UTF8.self) == Self.clientFinal)
        #expect(!client.isVerified)
        try client.receive(serverFinal: bytes(Self.serverFinal))
        #expect(client.isVerified)
    }

    @Test func wrongServerSignatureFails() throws {
        var client = SCRAMSHA256Client(username: "user", password: "pencil", clientNonce: Self.clientNonce)
        _ = client.clientFirstMessage()
        _ = try client.receive(serverFirst: bytes(Self.serverFirst))
        let wrong = "v=" + Base64.encode([UInt8](repeating: 7, count: 32))
        let error = #expect(throws: WireError.self) { try client.receive(serverFinal: bytes(wrong)) }
        #expect(error?.code == .authentication)
        #expect(error?.message.contains("signature") == true)
        #expect(!client.isVerified)
    }

    @Test func wrongPasswordGivesADifferentProofAndRejectsTheRealSignature() throws {
        var client = SCRAMSHA256Client(username: "user", password: "pencil2", clientNonce: Self.clientNonce)
        _ = client.clientFirstMessage()
        let final = try client.receive(serverFirst: bytes(Self.serverFirst))
        #expect(String(decoding: final, as: UTF8.self) != Self.clientFinal)
        #expect(throws: WireError.self) { try client.receive(serverFinal: bytes(Self.serverFinal)) }
    }

    @Test func serverErrorAttributeIsReported() throws {
        var client = SCRAMSHA256Client(username: "user", password: "pencil", clientNonce: Self.clientNonce)
        _ = client.clientFirstMessage()
        _ = try client.receive(serverFirst: bytes(Self.serverFirst))
        let error = #expect(throws: WireError.self) { try client.receive(serverFinal: bytes("e=invalid-proof")) }
        #expect(error?.code == .authentication)
        #expect(error?.message.contains("invalid-proof") == true)
    }

    @Test(arguments: [
        ("r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", WireError.Code.authentication),  // not our nonce
        ("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", .authentication),                // not extended
        ("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", .tooLarge),                      // below bounds
        ("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100000000", .tooLarge),              // above bounds
        ("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-5", .malformed),
        ("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999", .malformed),
        ("r=rOprNGfwEbeRWgbNEkqOabc,s=not base64!,i=4096", .malformed),
        ("r=rOprNGfwEbeRWgbNEkqOabc,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==", .malformed),                  // wrong order
        ("m=ext,r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", .unsupported),
        ("e=other-error", .authentication),
        ("garbage", .malformed),
        ("", .malformed),
    ])
    func serverFirstIsValidated(message: String, code: WireError.Code) {
        var client = SCRAMSHA256Client(username: "user", password: "pencil", clientNonce: Self.clientNonce)
        _ = client.clientFirstMessage()
        let error = #expect(throws: WireError.self) { _ = try client.receive(serverFirst: bytes(message)) }
        #expect(error?.code == code, "\(message): \(String(describing: error))")
    }

    @Test func messagesOutOfOrderAreRejected() {
        var client = SCRAMSHA256Client(username: "user", password: "pencil", clientNonce: Self.clientNonce)
        #expect(throws: WireError.self) { _ = try client.receive(serverFirst: bytes(Self.serverFirst)) }
        var other = SCRAMSHA256Client(username: "user", password: "pencil", clientNonce: Self.clientNonce)
        _ = other.clientFirstMessage()
        #expect(throws: WireError.self) { try other.receive(serverFinal: bytes(Self.serverFinal)) }
    }

    @Test func randomNoncesArePrintableAndDistinct() {
        let a = SCRAMSHA256Client.randomNonce(), b = SCRAMSHA256Client.randomNonce()
        #expect(a != b)
        #expect(a.utf8.count == 24)
        #expect(a.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ",") })
    }

    @Test func usernamesAreEscaped() {
        var client = SCRAMSHA256Client(username: "a=b,c", password: "x", clientNonce: "abc")
        #expect(String(decoding: client.clientFirstMessage(), as: UTF8.self) == "n,,n=a=3Db=2Cc,r=abc")
    }
}
