/// The one error type of SageWire: a decoder or state machine met bytes it cannot accept.
/// The message names what was wrong, at which value, and what it usually means.
public struct WireError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The bytes do not follow the protocol (wrong type byte, bad number, missing CRLF, wrong peer).
        case malformed
        /// A declared or actual length, count or header size is over the configured bound.
        case tooLarge
        /// Aggregates are nested deeper than the configured bound.
        case tooDeep
        /// Valid protocol that this implementation deliberately does not handle.
        case unsupported
        /// A well-formed message that is wrong at this point of the conversation.
        case unexpected
        /// Authentication failed or could not be carried out.
        case authentication
    }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }

    public var description: String { message }
}
