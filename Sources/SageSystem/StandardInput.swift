import Glibc

/// Reading this process's standard input as bytes (for line protocols such as MCP over stdio).
public enum StandardInput {
    /// Blocks until some bytes arrive; nil at end of input (or on an error other than EINTR).
    public static func read(maximum: Int = 65536) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: maximum)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress!, $0.count) }
            if n > 0 { return Array(buf[0..<n]) }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }
}
