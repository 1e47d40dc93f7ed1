/// SHA-256 (FIPS 180-4), incremental and one-shot. Pure Swift: Foundation on Linux has no hashing.
public struct SHA256: Sendable {
    public static let digestByteCount = 32
    public static let blockByteCount = 64

    @usableFromInline var state: SHA256State
    /// Bytes waiting for a full 64-byte block (always fewer than 64 between calls).
    @usableFromInline var pending: [UInt8]
    @usableFromInline var totalByteCount: UInt64

    public init() {
        state = .initial
        pending = []
        pending.reserveCapacity(SHA256.blockByteCount)
        totalByteCount = 0
    }

    /// Hashes `bytes` in one call.
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { update(buffer: UnsafeRawBufferPointer($0)) }
        if handled == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update(buffer: $0) }
        }
    }

    public mutating func update(buffer: UnsafeRawBufferPointer) {
        guard buffer.count > 0 else { return }
        totalByteCount &+= UInt64(buffer.count)
        var offset = 0
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { words in
            let w = words.baseAddress!
            if !pending.isEmpty {
                let take = min(SHA256.blockByteCount - pending.count, buffer.count)
                pending.append(contentsOf: buffer[0..<take])
                offset = take
                guard pending.count == SHA256.blockByteCount else { return }
                pending.withUnsafeBytes { SHA256State.loadBlock($0.baseAddress!, into: w) }
                state.compress(w)
                pending.removeAll(keepingCapacity: true)
            }
            while buffer.count - offset >= SHA256.blockByteCount {
                SHA256State.loadBlock(buffer.baseAddress! + offset, into: w)
                state.compress(w)
                offset += SHA256.blockByteCount
            }
        }
        if offset < buffer.count { pending.append(contentsOf: buffer[offset...]) }
    }

    /// Pads, finishes and returns the 32-byte digest. The hasher should not be used afterwards.
    public mutating func finalize() -> [UInt8] {
        let bitLength = totalByteCount &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % SHA256.blockByteCount != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { words in
            tail.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    SHA256State.loadBlock(raw.baseAddress! + offset, into: words.baseAddress!)
                    state.compress(words.baseAddress!)
                    offset += SHA256.blockByteCount
                }
            }
        }
        pending.removeAll()
        return state.bytes
    }
}

/// The eight working words of SHA-256 and its compression function. Kept separate so that
/// HMAC and PBKDF2 can run whole iterations on precomputed states without touching the heap.
@usableFromInline struct SHA256State: Sendable, Equatable {
    @usableFromInline var h0, h1, h2, h3, h4, h5, h6, h7: UInt32

    @usableFromInline static let initial = SHA256State(
        h0: 0x6a09e667, h1: 0xbb67ae85, h2: 0x3c6ef372, h3: 0xa54ff53a,
        h4: 0x510e527f, h5: 0x9b05688c, h6: 0x1f83d9ab, h7: 0x5be0cd19)

    @usableFromInline init(h0: UInt32, h1: UInt32, h2: UInt32, h3: UInt32, h4: UInt32, h5: UInt32, h6: UInt32, h7: UInt32) {
        self.h0 = h0; self.h1 = h1; self.h2 = h2; self.h3 = h3; self.h4 = h4; self.h5 = h5; self.h6 = h6; self.h7 = h7
    }

    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    /// Reads 64 bytes as 16 big-endian words into `w[0..<16]`.
    @inline(__always) static func loadBlock(_ p: UnsafeRawPointer, into w: UnsafeMutablePointer<UInt32>) {
        for i in 0..<16 {
            let b = p + i * 4
            w[i] = UInt32(b.load(as: UInt8.self)) << 24 | UInt32(b.load(fromByteOffset: 1, as: UInt8.self)) << 16
                | UInt32(b.load(fromByteOffset: 2, as: UInt8.self)) << 8 | UInt32(b.load(fromByteOffset: 3, as: UInt8.self))
        }
    }

    @inline(__always) static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 &- n)) }

    /// Compresses one block whose 16 words are in `w[0..<16]`; `w` must have room for 64 words (the schedule).
    @usableFromInline mutating func compress(_ w: UnsafeMutablePointer<UInt32>) {
        for t in 16..<64 {
            let x = w[t - 15], y = w[t - 2]
            let s0 = SHA256State.rotr(x, 7) ^ SHA256State.rotr(x, 18) ^ (x >> 3)
            let s1 = SHA256State.rotr(y, 17) ^ SHA256State.rotr(y, 19) ^ (y >> 10)
            w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
        }
        var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
        SHA256State.k.withUnsafeBufferPointer { k in
            for t in 0..<64 {
                let s1 = SHA256State.rotr(e, 6) ^ SHA256State.rotr(e, 11) ^ SHA256State.rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = h &+ s1 &+ ch &+ k[t] &+ w[t]
                let s0 = SHA256State.rotr(a, 2) ^ SHA256State.rotr(a, 13) ^ SHA256State.rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                h = g; g = f; f = e; e = d &+ t1
                d = c; c = b; b = a; a = t1 &+ t2
            }
        }
        h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d; h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
    }

    /// Writes the eight words to `w[0..<8]`.
    @inline(__always) func store(into w: UnsafeMutablePointer<UInt32>) {
        w[0] = h0; w[1] = h1; w[2] = h2; w[3] = h3; w[4] = h4; w[5] = h5; w[6] = h6; w[7] = h7
    }

    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        for word in [h0, h1, h2, h3, h4, h5, h6, h7] {
            out.append(UInt8(truncatingIfNeeded: word >> 24)); out.append(UInt8(truncatingIfNeeded: word >> 16))
            out.append(UInt8(truncatingIfNeeded: word >> 8)); out.append(UInt8(truncatingIfNeeded: word))
        }
        return out
    }
}
