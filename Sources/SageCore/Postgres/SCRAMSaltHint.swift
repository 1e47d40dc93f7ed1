import Dispatch
import SageSystem
import SageWire

/// The salt and iteration count the project's postgres gave for its user last time, in `.sagedev/run/postgres.scram`,
/// so that a new daemon derives the salted password while postgres starts instead of after it is ready (4096
/// rounds of PBKDF2, 2 to 3.5 ms, on the path of every warm `up`). Neither is secret: the server sends both to
/// anyone who starts SCRAM as that user. A stale hint (the password or the salt changed) costs one derivation
/// that nothing uses.
public final class SCRAMSaltHint: Sendable {
    public struct Parameters: Sendable, Equatable {
        public var salt: [UInt8]
        public var iterations: Int
        public init(salt: [UInt8], iterations: Int) { self.salt = salt; self.iterations = iterations }
    }

    public let path: String
    /// What the file holds, as last read or written by this process.
    private let known = Locked<Parameters?>(nil)
    public init(path: String) { self.path = path }

    /// "4096 <hex salt>\n"; nil when missing or not in that form.
    public func load() -> Parameters? {
        guard let text = FileDescriptor.readText(path) else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let n = Int(parts[0]), (1...10_000_000).contains(n),
              let salt = SCRAMSaltHint.bytes(hex: parts[1]), !salt.isEmpty else { return nil }
        return Parameters(salt: salt, iterations: n)
    }

    public func save(_ p: Parameters) throws {
        try FileDescriptor.writeFileAtomically(path, Array("\(p.iterations) \(Bytes.hex(p.salt))\n".utf8), mode: 0o600)
    }

    /// Derives the salted password for `password` with the saved parameters, in the background, into
    /// `SCRAMSaltedPasswordCache`, then runs `done`. Returns the parameters used (nil without a hint).
    @discardableResult
    public func prime(password: String, done: (@Sendable () -> Void)? = nil) -> Parameters? {
        guard !password.isEmpty, let p = load() else { return nil }
        known.withValue { $0 = p }
        let bytes = Array(password.utf8)
        DispatchQueue.global(qos: .userInitiated).async {
            _ = SCRAMSaltedPasswordCache.saltedPassword(password: bytes, salt: p.salt, iterations: p.iterations)
            done?()
        }
        return p
    }

    /// Saves, in the background, what the last exchange for `password` used, when the file holds something else.
    public func rememberInBackground(password: String) {
        DispatchQueue.global(qos: .utility).async { [self] in remember(password: password) }
    }

    func remember(password: String) {
        guard let p = SCRAMSaltedPasswordCache.lastParameters(forPassword: password), p != known.current else { return }
        // A hint that cannot be written only costs the next daemon one derivation after postgres is ready.
        if (try? save(p)) != nil { known.withValue { $0 = p } }
    }

    static func bytes(hex: Substring) -> [UInt8]? {
        guard hex.utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var high: UInt8?
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }
}
