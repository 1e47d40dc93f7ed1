/// HMAC-SHA-256 (RFC 2104), incremental and one-shot.
public struct HMACSHA256: Sendable {
    public static let byteCount = 32

    private var inner: SHA256
    private let outerState: SHA256State

    public init<Key: Collection>(key: Key) where Key.Element == UInt8 {
        let (innerState, outerState) = HMACSHA256.padStates(key: Array(key))
        inner = SHA256(); inner.state = innerState; inner.totalByteCount = UInt64(SHA256.blockByteCount)
        self.outerState = outerState
    }

    public static func authenticationCode<Message: Sequence, Key: Collection>(for message: Message, key: Key) -> [UInt8]
        where Message.Element == UInt8, Key.Element == UInt8 {
        var h = HMACSHA256(key: key)
        h.update(message)
        return h.finalize()
    }

    public mutating func update<Message: Sequence>(_ bytes: Message) where Message.Element == UInt8 { inner.update(bytes) }

    public mutating func finalize() -> [UInt8] {
        let innerDigest = inner.finalize()
        var outer = SHA256(); outer.state = outerState; outer.totalByteCount = UInt64(SHA256.blockByteCount)
        outer.update(innerDigest)
        return outer.finalize()
    }

    /// The SHA-256 states after absorbing key⊕ipad and key⊕opad: every HMAC with this key starts from them.
    static func padStates(key: [UInt8]) -> (inner: SHA256State, outer: SHA256State) {
        var block = key.count > SHA256.blockByteCount ? SHA256.hash(key) : key
        block += [UInt8](repeating: 0, count: SHA256.blockByteCount - block.count)
        var innerState = SHA256State.initial, outerState = SHA256State.initial
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { words in
            let w = words.baseAddress!
            let ipad = block.map { $0 ^ 0x36 }, opad = block.map { $0 ^ 0x5c }
            ipad.withUnsafeBytes { SHA256State.loadBlock($0.baseAddress!, into: w) }
            innerState.compress(w)
            opad.withUnsafeBytes { SHA256State.loadBlock($0.baseAddress!, into: w) }
            outerState.compress(w)
        }
        return (innerState, outerState)
    }
}

/// PBKDF2 with HMAC-SHA-256 as the PRF (RFC 8018), as SCRAM-SHA-256 uses it to salt passwords.
public enum PBKDF2 {
    /// Derives `keyByteCount` bytes. Each iteration is two SHA-256 compressions on precomputed pad
    /// states, done on stack words with no allocation, so 4096 iterations cost about 8192 compressions.
    /// Callers validate `iterations` (SCRAM rejects counts below 1); a count below 1 is treated as 1.
    public static func sha256(password: [UInt8], salt: [UInt8], iterations: Int, keyByteCount: Int = 32) -> [UInt8] {
        let (innerState, outerState) = HMACSHA256.padStates(key: password)
        var derived = [UInt8]()
        derived.reserveCapacity(keyByteCount + 32)
        var blockIndex: UInt32 = 1
        while derived.count < keyByteCount {
            // U1 = HMAC(P, S || INT(i)) goes through the general path: the salt has any length.
            var first = SHA256(); first.state = innerState; first.totalByteCount = UInt64(SHA256.blockByteCount)
            first.update(salt)
            first.update([UInt8(truncatingIfNeeded: blockIndex >> 24), UInt8(truncatingIfNeeded: blockIndex >> 16),
                          UInt8(truncatingIfNeeded: blockIndex >> 8), UInt8(truncatingIfNeeded: blockIndex)])
            var outerFirst = SHA256(); outerFirst.state = outerState; outerFirst.totalByteCount = UInt64(SHA256.blockByteCount)
            outerFirst.update(first.finalize())
            let u1 = outerFirst.finalize()

            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64 + 8 + 8) { buffer in
                let w = buffer.baseAddress!           // 64-word schedule
                let u = w + 64                        // U_j as words
                let t = w + 72                        // running XOR
                u1.withUnsafeBytes { raw in
                    for i in 0..<8 {
                        let b = raw.baseAddress! + i * 4
                        u[i] = UInt32(b.load(as: UInt8.self)) << 24 | UInt32(b.load(fromByteOffset: 1, as: UInt8.self)) << 16
                            | UInt32(b.load(fromByteOffset: 2, as: UInt8.self)) << 8 | UInt32(b.load(fromByteOffset: 3, as: UInt8.self))
                        t[i] = u[i]
                    }
                }
                // A 32-byte message after a 64-byte pad block: one block, padded, 96 bytes = 768 bits in all.
                var remaining = iterations - 1
                while remaining > 0 {
                    remaining -= 1
                    for i in 0..<8 { w[i] = u[i] }
                    w[8] = 0x8000_0000
                    for i in 9..<15 { w[i] = 0 }
                    w[15] = 768
                    var s = innerState
                    s.compress(w)
                    s.store(into: w)
                    w[8] = 0x8000_0000
                    for i in 9..<15 { w[i] = 0 }
                    w[15] = 768
                    s = outerState
                    s.compress(w)
                    s.store(into: u)
                    for i in 0..<8 { t[i] ^= u[i] }
                }
                for i in 0..<8 {
                    let word = t[i]
                    derived.append(UInt8(truncatingIfNeeded: word >> 24)); derived.append(UInt8(truncatingIfNeeded: word >> 16))
                    derived.append(UInt8(truncatingIfNeeded: word >> 8)); derived.append(UInt8(truncatingIfNeeded: word))
                }
            }
            blockIndex &+= 1
        }
        return Array(derived.prefix(keyByteCount))
    }
}
