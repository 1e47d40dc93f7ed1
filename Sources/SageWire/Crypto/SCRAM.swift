/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding, as PostgreSQL speaks it.
///
/// Three steps: `clientFirstMessage()`, then `receive(serverFirst:)` returns the client-final message, then
/// `receive(serverFinal:)` checks the server's signature. A wrong or missing signature is an error: the server
/// must prove it knows the password too, or the exchange has been tampered with.
public struct SCRAMSHA256Client: Sendable {
    public static let mechanism = "SCRAM-SHA-256"
    /// PostgreSQL's default is 4096 (`scram_iterations`). The cap keeps a hostile server from making us
    /// burn seconds of CPU per connection.
    public static let defaultIterationRange: ClosedRange<Int> = 1...1_000_000

    /// Computes SaltedPassword = Hi(password, salt, iterations). Replaceable so callers can cache it.
    public typealias SaltedPasswordFunction = @Sendable (_ password: [UInt8], _ salt: [UInt8], _ iterations: Int) -> [UInt8]
    public static let computeSaltedPassword: SaltedPasswordFunction = { password, salt, iterations in
        PBKDF2.sha256(password: password, salt: salt, iterations: iterations)
    }

    private enum Step: Sendable {
        case initial
        case sentClientFirst
        case sentClientFinal(expectedServerSignature: [UInt8])
        case verified
        case failed
    }

    private let username: String
    private let password: [UInt8]
    public let clientNonce: String
    private let iterationRange: ClosedRange<Int>
    private let saltedPassword: SaltedPasswordFunction
    private var step = Step.initial

    /// `username` may be empty: PostgreSQL ignores it and uses the startup user. `clientNonce` is random unless
    /// given (tests pass the RFC's); it must be printable ASCII without commas.
    public init(username: String, password: String, clientNonce: String? = nil,
                iterationRange: ClosedRange<Int> = SCRAMSHA256Client.defaultIterationRange,
                saltedPassword: @escaping SaltedPasswordFunction = SCRAMSHA256Client.computeSaltedPassword) {
        self.username = username
        // SASLprep of an ASCII password is the password itself; other passwords are sent as their UTF-8
        // bytes, which is also what PostgreSQL falls back to when its own SASLprep does not apply.
        self.password = Array(password.utf8)
        self.clientNonce = clientNonce ?? SCRAMSHA256Client.randomNonce()
        self.iterationRange = iterationRange
        self.saltedPassword = saltedPassword
    }

    /// 18 random bytes as base64: 24 printable characters, never a comma.
    public static func randomNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64.encode((0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    private var clientFirstBare: String { "n=\(SCRAMSHA256Client.escape(username)),r=\(clientNonce)" }
    private static let gs2Header = "n,,"  // no channel binding, no authzid

    /// The client-first message: `n,,n=<user>,r=<nonce>`.
    public mutating func clientFirstMessage() -> [UInt8] {
        step = .sentClientFirst
        return Array((SCRAMSHA256Client.gs2Header + clientFirstBare).utf8)
    }

    /// Checks the server-first message (`r=…,s=…,i=…`) and returns the client-final message with the proof.
    public mutating func receive(serverFirst message: [UInt8]) throws -> [UInt8] {
        guard case .sentClientFirst = step else {
            step = .failed
            throw WireError(.unexpected, "SCRAM: the server sent its first message at the wrong point of the exchange")
        }
        step = .failed
        guard let text = String(validating: message, as: UTF8.self) else {
            throw WireError(.malformed, "SCRAM: the server-first message is not UTF-8")
        }
        let attributes = try SCRAMSHA256Client.attributes(text, what: "server-first")
        if let error = attributes.first(where: { $0.key == "e" }) {
            throw WireError(.authentication, "SCRAM: the server refused authentication: \(error.value)")
        }
        guard attributes.count >= 3, attributes[0].key == "r", attributes[1].key == "s", attributes[2].key == "i" else {
            if attributes.first?.key == "m" {
                throw WireError(.unsupported, "SCRAM: the server requires an extension (m=) that sagedev does not support")
            }
            throw WireError(.malformed, "SCRAM: the server-first message must be r=…,s=…,i=…, got \"\(SCRAMSHA256Client.excerpt(text))\"")
        }
        let nonce = attributes[0].value
        guard nonce.hasPrefix(clientNonce), nonce.utf8.count > clientNonce.utf8.count else {
            throw WireError(.authentication, "SCRAM: the server's nonce does not extend ours, so this answer is not for this exchange; refusing to continue")
        }
        guard nonce.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e && $0 != UInt8(ascii: ",") }) else {
            throw WireError(.malformed, "SCRAM: the server's nonce has characters outside printable ASCII")
        }
        guard let salt = Base64.decode(attributes[1].value), !salt.isEmpty else {
            throw WireError(.malformed, "SCRAM: the salt \"\(SCRAMSHA256Client.excerpt(attributes[1].value))\" is not base64")
        }
        let iterationText = attributes[2].value
        guard !iterationText.isEmpty, iterationText.utf8.count <= 10, iterationText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let iterations = Int(iterationText) else {
            throw WireError(.malformed, "SCRAM: the iteration count \"\(SCRAMSHA256Client.excerpt(iterationText))\" is not a number")
        }
        guard iterationRange.contains(iterations) else {
            throw WireError(.tooLarge, "SCRAM: the server asks for \(iterations) iterations, outside the accepted \(iterationRange.lowerBound)...\(iterationRange.upperBound); lower scram_iterations on the server")
        }

        let clientFinalWithoutProof = "c=\(Base64.encode(Array(SCRAMSHA256Client.gs2Header.utf8))),r=\(nonce)"
        let authMessage = Array("\(clientFirstBare),\(text),\(clientFinalWithoutProof)".utf8)
        let salted = saltedPassword(password, salt, iterations)
        let clientKey = HMACSHA256.authenticationCode(for: Array("Client Key".utf8), key: salted)
        let storedKey = SHA256.hash(clientKey)
        let clientSignature = HMACSHA256.authenticationCode(for: authMessage, key: storedKey)
        var proof = clientKey
        for i in proof.indices { proof[i] ^= clientSignature[i] }
        let serverKey = HMACSHA256.authenticationCode(for: Array("Server Key".utf8), key: salted)
        let serverSignature = HMACSHA256.authenticationCode(for: authMessage, key: serverKey)

        step = .sentClientFinal(expectedServerSignature: serverSignature)
        return Array("\(clientFinalWithoutProof),p=\(Base64.encode(proof))".utf8)
    }

    /// Checks the server-final message: `v=<signature>` must match, `e=<error>` is the server's refusal.
    public mutating func receive(serverFinal message: [UInt8]) throws {
        guard case .sentClientFinal(let expected) = step else {
            step = .failed
            throw WireError(.unexpected, "SCRAM: the server sent its final message at the wrong point of the exchange")
        }
        step = .failed
        guard let text = String(validating: message, as: UTF8.self) else {
            throw WireError(.malformed, "SCRAM: the server-final message is not UTF-8")
        }
        let attributes = try SCRAMSHA256Client.attributes(text, what: "server-final")
        guard let first = attributes.first else {
            throw WireError(.malformed, "SCRAM: the server-final message is empty")
        }
        if first.key == "e" {
            throw WireError(.authentication, "SCRAM: the server refused authentication: \(first.value)")
        }
        guard first.key == "v", let signature = Base64.decode(first.value) else {
            throw WireError(.malformed, "SCRAM: the server-final message must be v=… or e=…, got \"\(SCRAMSHA256Client.excerpt(text))\"")
        }
        guard SCRAMSHA256Client.constantTimeEqual(signature, expected) else {
            throw WireError(.authentication, "SCRAM: the server's signature is wrong: it does not know this password, or someone is in the middle; refusing the connection")
        }
        step = .verified
    }

    /// True once the server's signature has been checked and found right.
    public var isVerified: Bool { if case .verified = step { return true } else { return false } }

    // MARK: helpers

    /// Splits `a=x,b=y` into ordered pairs. Values may contain `=` (base64 padding) but not `,`.
    static func attributes(_ text: String, what: String) throws -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bytes = Array(part.utf8)
            guard bytes.count >= 2, bytes[1] == UInt8(ascii: "="),
                  (bytes[0] >= UInt8(ascii: "a") && bytes[0] <= UInt8(ascii: "z")) || (bytes[0] >= UInt8(ascii: "A") && bytes[0] <= UInt8(ascii: "Z")) else {
                throw WireError(.malformed, "SCRAM: the \(what) message has a malformed attribute \"\(excerpt(String(part)))\"")
            }
            out.append((String(decoding: bytes[0..<1], as: UTF8.self), String(decoding: bytes[2...], as: UTF8.self)))
        }
        return out
    }

    /// RFC 5802 saslname: `=` becomes `=3D` and `,` becomes `=2C`.
    static func escape(_ name: String) -> String {
        var out = ""
        for c in name {
            switch c {
            case "=": out += "=3D"
            case ",": out += "=2C"
            default: out.append(c)
            }
        }
        return out
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    static func excerpt(_ s: String) -> String {
        s.count > 60 ? String(s.prefix(60)) + "…" : s
    }
}
