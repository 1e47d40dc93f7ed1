/// The one error type of the database layer (migrations, seeds, template, reset, snapshots, backups).
/// The message says what failed, on which file or database, and what to do next; for a failed SQL file it
/// also carries the file, the line the server's error position maps to, the SQLSTATE and the hint.
public struct DatabaseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// PostgreSQL could not be reached or refused us.
        case connection
        /// A migration file failed; its transaction was rolled back.
        case migrationFailed
        /// A migration file changed after it was applied.
        case migrationEdited
        /// A seed file failed; its transaction was rolled back.
        case seedFailed
        /// The migrate or seed command exited non-zero.
        case commandFailed
        /// Creating or cloning a database (template, snapshot, reset) failed.
        case clone
        /// A snapshot name is invalid, unknown or already taken.
        case snapshot
        /// A backup or a restore of one failed.
        case backup
        /// Valkey could not be flushed.
        case cache
        /// The backend could not be stopped or started again.
        case backend
        /// Another reset held the lock for too long.
        case busy
        /// A request the caller must change (an invalid clone name): the CLI exits 64.
        case usage
        /// A file or directory could not be read.
        case io
    }

    public var code: Code
    public var message: String
    /// The SQL file that failed (its name, e.g. "003_messages.sql").
    public var file: String?
    /// 1-based line and column in `file` of the server's error position.
    public var line: Int?
    public var column: Int?
    public var sqlState: String?
    public var hint: String?

    public init(_ code: Code, _ message: String, file: String? = nil, line: Int? = nil, column: Int? = nil,
                sqlState: String? = nil, hint: String? = nil) {
        self.code = code; self.message = message; self.file = file; self.line = line; self.column = column
        self.sqlState = sqlState; self.hint = hint
    }

    public var description: String { message }
}
