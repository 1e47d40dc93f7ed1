import Testing
import Glibc
import Dispatch
import SageSystem
import SageWire
@testable import SageCore

/// The salt hint a daemon leaves for the next one (`SCRAMSaltHint`). Each test uses a password of its own, so the
/// process-wide salted-password cache is shared safely with the tests that run beside it.
@Suite struct SCRAMSaltHintTests {
    static let salt: [UInt8] = [0x9e, 0x01, 0x00, 0xff, 0x42, 0x17, 0x80, 0x3c, 0x5a, 0xa5, 0x10, 0x01, 0x02, 0x03, 0x04, 0x05]

    /// A hint file in a new temporary directory, removed afterwards.
    static func withHint(_ body: (SCRAMSaltHint) throws -> Void) throws {
        var template = Array("/tmp/sagedev-scram-hint-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = try? Subprocess.run(["rm", "-rf", dir], deadline: .after(seconds: 10)) }
        try body(SCRAMSaltHint(path: dir + "/postgres.scram"))
    }

    static func uniquePassword(_ tag: String) -> String { "hint-\(tag)-\(monotonicNanoseconds())" }

    @Test func aSavedHintReadsBackAndOnlyItsOwnerCanReadIt() throws {
        try Self.withHint { hint in
            let p = SCRAMSaltHint.Parameters(salt: Self.salt, iterations: 4096)
            try hint.save(p)
            #expect(hint.load() == p)
            #expect(FileDescriptor.readText(hint.path) == "4096 9e0100ff4217803c5aa5100102030405\n")
            #expect(FileTree.mode(hint.path).map { $0 & 0o777 } == 0o600)
        }
    }

    @Test(arguments: ["", "4096\n", "4096 \n", "x 9e01\n", "4096 9e0\n", "4096 9E01\n", "4096 zz\n", "0 9e01\n", "4096 9e01 extra\n"])
    func aMalformedHintIsIgnored(text: String) throws {
        try Self.withHint { hint in
            try FileDescriptor.writeFileAtomically(hint.path, Array(text.utf8), mode: 0o600)
            #expect(hint.load() == nil)
        }
    }

    @Test func withoutAHintNothingIsPrimed() throws {
        try Self.withHint { hint in
            let password = Self.uniquePassword("none")
            #expect(hint.prime(password: password) == nil)
            #expect(SCRAMSaltedPasswordCache.lastParameters(forPassword: password) == nil)
        }
    }

    @Test func primingDerivesTheSaltedPasswordBeforeAnyExchange() throws {
        try Self.withHint { hint in
            let password = Self.uniquePassword("prime")
            let p = SCRAMSaltHint.Parameters(salt: Self.salt, iterations: 4096)
            try hint.save(p)
            let derived = DispatchSemaphore(value: 0)
            #expect(hint.prime(password: password, done: { derived.signal() }) == p)
            #expect(derived.wait(timeout: .now() + 10) == .success)
            #expect(SCRAMSaltedPasswordCache.lastParameters(forPassword: password) == p)
            // The exchange then finds it: the value is PBKDF2's own.
            let before = SCRAMSaltedPasswordCache.statistics.hits
            let salted = SCRAMSaltedPasswordCache.saltedPassword(password: Array(password.utf8), salt: p.salt, iterations: p.iterations)
            #expect(SCRAMSaltedPasswordCache.statistics.hits > before)
            #expect(salted == PBKDF2.sha256(password: Array(password.utf8), salt: p.salt, iterations: p.iterations))
        }
    }

    @Test func rememberingSavesWhatTheLastExchangeUsed() throws {
        try Self.withHint { hint in
            let password = Self.uniquePassword("remember")
            _ = SCRAMSaltedPasswordCache.saltedPassword(password: Array(password.utf8), salt: Self.salt, iterations: 4096)
            hint.remember(password: password)
            #expect(hint.load() == SCRAMSaltHint.Parameters(salt: Self.salt, iterations: 4096))
        }
    }

    @Test func rememberingWithoutAnExchangeWritesNothing() throws {
        try Self.withHint { hint in
            hint.remember(password: Self.uniquePassword("never"))
            #expect(!FileDescriptor.exists(hint.path))
        }
    }
}
