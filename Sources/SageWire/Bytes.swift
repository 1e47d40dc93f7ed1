/// Byte helpers shared by the protocol codecs. Big-endian, as every wire format here is.
public enum Bytes {
    @inlinable public static func appendUInt32(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v >> 24)); out.append(UInt8(truncatingIfNeeded: v >> 16))
        out.append(UInt8(truncatingIfNeeded: v >> 8)); out.append(UInt8(truncatingIfNeeded: v))
    }
    @inlinable public static func appendInt32(_ v: Int32, to out: inout [UInt8]) { appendUInt32(UInt32(bitPattern: v), to: &out) }
    @inlinable public static func appendInt16(_ v: Int16, to out: inout [UInt8]) {
        let u = UInt16(bitPattern: v)
        out.append(UInt8(truncatingIfNeeded: u >> 8)); out.append(UInt8(truncatingIfNeeded: u))
    }
    @inlinable public static func readUInt32<C: RandomAccessCollection>(_ b: C, at i: C.Index) -> UInt32 where C.Element == UInt8 {
        let i1 = b.index(after: i), i2 = b.index(after: i1), i3 = b.index(after: i2)
        return UInt32(b[i]) << 24 | UInt32(b[i1]) << 16 | UInt32(b[i2]) << 8 | UInt32(b[i3])
    }
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8](); for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }
    /// Bytes as a double-quoted string for an error message: printable ASCII as is, CR, LF, quote and backslash
    /// escaped, anything else as \xNN; `…` before the closing quote when `truncated` (the bytes are a prefix).
    public static func quoted(_ bytes: some Sequence<UInt8>, truncated: Bool) -> String {
        var s = "\""
        for b in bytes {
            switch b {
            case 13: s += "\\r"
            case 10: s += "\\n"
            case 34: s += "\\\""
            case 92: s += "\\\\"
            case 32...126: s += String(UnicodeScalar(b))
            default: s += "\\x" + hex([b])
            }
        }
        return s + (truncated ? "…\"" : "\"")
    }
}
