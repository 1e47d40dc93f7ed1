import SageSystem

/// Where a command writes. Tests capture it; the executable writes to fds 1 and 2.
public final class Output: @unchecked Sendable {
    public let isTTY: Bool
    public let useColour: Bool
    private let lock = Lock()
    private let writeOut: @Sendable (String) -> Void
    private let writeErr: @Sendable (String) -> Void

    public init(isTTY: Bool, useColour: Bool, out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void) {
        self.isTTY = isTTY; self.useColour = useColour; self.writeOut = out; self.writeErr = err
    }

    /// Standard output and error of this process. Colour only on a TTY and never with NO_COLOR set.
    public static func standard(environment: [String: String]) -> Output {
        let tty = ProcessIdentity.isTerminal(1)
        let noColour = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        return Output(isTTY: tty, useColour: tty && !noColour && environment["TERM"] != "dumb",
                      out: { FileDescriptor.writeAll(1, $0) }, err: { FileDescriptor.writeAll(2, $0) })
    }

    public func line(_ s: String = "") { lock.locked { writeOut(s + "\n") } }
    public func write(_ s: String) { lock.locked { writeOut(s) } }
    public func error(_ s: String) { lock.locked { writeErr(s + "\n") } }

    public enum Colour: String { case red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36", dim = "2", bold = "1" }
    public func paint(_ s: String, _ c: Colour) -> String { useColour ? "\u{1B}[\(c.rawValue)m\(s)\u{1B}[0m" : s }
}

/// Everything a command may use from the outside world. No command reads globals.
public struct CommandContext: Sendable {
    public var output: Output
    public var environment: [String: String]
    public var workingDirectory: String
    /// Whether stdin is a terminal (for confirmations).
    public var stdinIsTTY: Bool
    /// Reads one line from stdin (for confirmations); nil at EOF.
    public var readLine: @Sendable () -> String?
    /// The path of the running sagedev executable (to start the daemon).
    public var executablePath: String
    /// Reads the next bytes of stdin (for `mcp`); nil at end of input.
    public var readInput: @Sendable () -> [UInt8]?

    public init(output: Output, environment: [String: String], workingDirectory: String,
                stdinIsTTY: Bool, readLine: @escaping @Sendable () -> String?, executablePath: String,
                readInput: @escaping @Sendable () -> [UInt8]? = { nil }) {
        self.output = output; self.environment = environment; self.workingDirectory = workingDirectory
        self.stdinIsTTY = stdinIsTTY; self.readLine = readLine; self.executablePath = executablePath
        self.readInput = readInput
    }
}
