import SageSystem

/// Connections kept open between database operations, each with the endpoint it was opened to. A new maintenance
/// session costs a TCP connect, SCRAM and a cold catalog cache: its first read of pg_stat_activity takes about
/// 3 ms, against 0.3 ms on a session that has run one before. In a test loop that resets before every test, that is
/// most of a reset.
///
/// A connection is handed out again only when it is idle (ready, outside a transaction, nothing unread: a server
/// that restarted or ended the session leaves an error or an end of stream, and the connection is closed instead)
/// and was opened to the same endpoint (a changed .env opens a new one). At most `capacity` are kept.
final class IdleConnections<Key: Equatable, Connection>: @unchecked Sendable {
    private let idle = Locked<[(key: Key, connection: Connection)]>([])
    private let isIdle: (Connection) -> Bool
    private let close: (Connection) -> Void
    let capacity: Int

    init(capacity: Int, isIdle: @escaping (Connection) -> Bool, close: @escaping (Connection) -> Void) {
        self.capacity = capacity; self.isIdle = isIdle; self.close = close
    }

    /// An idle connection to `key`, or a new one from `open`. Connections found unusable on the way are closed.
    func take(_ key: Key, orOpen open: () throws -> Connection) rethrows -> Connection {
        if let kept = take(key) { return kept }
        return try open()
    }

    /// An idle connection to `key`, if one is kept. Connections found unusable on the way are closed.
    func take(_ key: Key) -> Connection? {
        while let kept = idle.withValue({ $0.popLast() }) {
            if kept.key == key && isIdle(kept.connection) { return kept.connection }
            close(kept.connection)
        }
        return nil
    }

    /// Keeps `connection` for the next `take`, unless it is not idle or `capacity` are kept already.
    func giveBack(_ connection: Connection, for key: Key) {
        guard isIdle(connection) else { close(connection); return }
        let kept = idle.withValue { list -> Bool in
            guard list.count < capacity else { return false }
            list.append((key, connection))
            return true
        }
        if !kept { close(connection) }
    }

    /// Runs `body` with a connection from `take`, and gives it back afterwards (closed when `body` left it in a
    /// transaction or broken).
    func with<T>(_ key: Key, open: () throws -> Connection, _ body: (Connection) throws -> T) throws -> T {
        let c = try take(key, orOpen: open)
        defer { giveBack(c, for: key) }
        return try body(c)
    }

    /// Closes every kept connection (postgres is stopping: a session left open would hold up a smart shutdown).
    func closeAll() {
        for kept in idle.withValue({ list -> [(key: Key, connection: Connection)] in defer { list = [] }; return list }) {
            close(kept.connection)
        }
    }

    var count: Int { idle.withValue { $0.count } }
}
