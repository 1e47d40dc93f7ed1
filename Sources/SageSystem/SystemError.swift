import Glibc
import CSageSystem

/// The one error type of SageSystem: what failed, on which value, what to do next, and the errno.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case connectionRefused, connectionReset, timedOut, hostUnreachable, addressInUse
        case invalidAddress, closed, io, spawn, permission, notFound, tooLarge, other
    }
    public var code: Code
    public var message: String
    public var errno: Int32

    public init(_ code: Code, _ message: String, errno: Int32 = 0) {
        self.code = code; self.message = message; self.errno = errno
    }

    /// Builds an error from the current errno, naming the operation and the value it acted on.
    public static func fromErrno(_ operation: String, _ subject: String, errno e: Int32 = CSageSystem.csage_errno()) -> SystemError {
        let code: Code
        switch e {
        case ECONNREFUSED: code = .connectionRefused
        case ECONNRESET, EPIPE: code = .connectionReset
        case ETIMEDOUT: code = .timedOut
        case EHOSTUNREACH, ENETUNREACH: code = .hostUnreachable
        case EADDRINUSE: code = .addressInUse
        case EACCES, EPERM: code = .permission
        case ENOENT: code = .notFound
        default: code = .other
        }
        return SystemError(code, "\(operation) \(subject): \(String(cString: strerror(e)))", errno: e)
    }

    public var description: String { message }

    /// The C library's text for an errno ("No such file or directory").
    public static func describe(errno e: Int32) -> String { String(cString: strerror(e)) }
}
