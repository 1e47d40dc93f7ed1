import SageSystem
import SageWire

/// Names of the databases sagedev keeps next to the app database. PostgreSQL truncates identifiers at 63 bytes,
/// so a long app database name is shortened and given a hash to stay unique.
public enum DatabaseNames {
    public static let maximumBytes = 63

    public static func template(for db: String) -> String { fit(db, "__sagedev_template") }
    static func templateBuild(for db: String) -> String { fit(db, "__sagedev_template_new") }
    static func restoreScratch(for db: String) -> String { fit(db, "__sagedev_restore") }
    /// The copy a reset or restore is about to swap into the app database's place.
    static func incoming(for db: String) -> String { fit(db, "__sagedev_incoming") }
    /// Where the app database goes during a swap, until it is dropped in the background (a 16-digit stamp follows).
    static func asidePrefix(for db: String) -> String { prefix(db, "__sagedev_old_", room: 16) }
    static func aside(for db: String, stamp: UInt64) -> String {
        let hex = String(stamp, radix: 16)
        return asidePrefix(for: db) + String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }
    /// The ready copies of the template (`…_spare_1`, `…_spare_2`, …) that resets and clones take.
    static func sparePrefix(for db: String) -> String { prefix(db, "__sagedev_spare_", room: 2) }
    static func spare(_ n: Int, for db: String) -> String { sparePrefix(for: db) + String(n) }
    /// The single spare of earlier versions, dropped when found.
    static func legacySpare(for db: String) -> String { fit(db, "__sagedev_spare") }
    public static func snapshotPrefix(for db: String) -> String { fit(db, "__sagedev_snap_") }
    /// Clones for tests: `<db>__clone_<name>`.
    public static func clonePrefix(for db: String) -> String { prefix(db, "__clone_", room: 20) }

    /// The database that holds snapshot `name`.
    public static func snapshot(_ name: String, for db: String) throws -> String {
        try validateSnapshotName(name, for: db)
        return snapshotPrefix(for: db) + name
    }

    /// Letters, digits, '-' and '_', starting with a letter or digit; short enough to fit the database name.
    public static func validateSnapshotName(_ name: String, for db: String) throws {
        let room = maximumBytes - snapshotPrefix(for: db).utf8.count
        guard isValidName(name, room: room) else {
            throw DatabaseError(.snapshot, "invalid snapshot name \"\(name.prefix(80))\": use 1 to \(room) letters, digits, '-' or '_', starting with a letter or digit")
        }
    }

    /// The database that holds clone `name`.
    public static func clone(_ name: String, for db: String) throws -> String {
        try validateCloneName(name, for: db)
        return clonePrefix(for: db) + name
    }

    /// Clone names: lower-case letters, digits, '-' and '_', starting with a letter or digit (a clone's name is
    /// part of a URL and of a database name that tools compare case-sensitively).
    public static func validateCloneName(_ name: String, for db: String) throws {
        let room = maximumBytes - clonePrefix(for: db).utf8.count
        guard isValidName(name, room: room), !name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else {
            throw DatabaseError(.usage, "invalid clone name \"\(name.prefix(80))\": use 1 to \(room) lower-case letters, digits, '-' or '_', starting with a letter or digit")
        }
    }

    static func isValidName(_ name: String, room: Int) -> Bool {
        !name.isEmpty && name.utf8.count <= room && name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
        } && name.utf8.first.map { $0 != 0x2D && $0 != 0x5F } == true
    }

    static func fit(_ db: String, _ suffix: String) -> String {
        if db.utf8.count + suffix.utf8.count <= maximumBytes { return db + suffix }
        let tag = "_" + String(hex(SHA256.hash(Array(db.utf8))).prefix(8))
        var head = ""
        for ch in db {
            if (head + String(ch)).utf8.count + tag.utf8.count + suffix.utf8.count > maximumBytes { break }
            head.append(ch)
        }
        return head + tag + suffix
    }

    /// `db + marker`, shortened like `fit` so that `room` more bytes still fit after it.
    static func prefix(_ db: String, _ marker: String, room: Int) -> String {
        let padded = fit(db, marker + String(repeating: "x", count: room))
        return String(padded.utf8.dropLast(room))!
    }
}

/// What sagedev writes in `COMMENT ON DATABASE` of the databases it keeps: `sagedev <kind> v1 key=value ...`.
public struct DatabaseLabel: Sendable, Equatable {
    public var kind: String
    public var fields: [String: String]

    public init(kind: String, fields: [String: String]) { self.kind = kind; self.fields = fields }

    public var text: String {
        "sagedev \(kind) v1" + fields.keys.sorted().map { " \($0)=\(fields[$0]!)" }.joined()
    }

    public static func parse(_ comment: String?) -> DatabaseLabel? {
        guard let comment else { return nil }
        let parts = comment.split(separator: " ")
        guard parts.count >= 3, parts[0] == "sagedev", parts[2] == "v1" else { return nil }
        var fields: [String: String] = [:]
        for p in parts.dropFirst(3) {
            guard let eq = p.firstIndex(of: "=") else { continue }
            fields[String(p[..<eq])] = String(p[p.index(after: eq)...])
        }
        return DatabaseLabel(kind: String(parts[1]), fields: fields)
    }
}

/// Cluster-level work over a connection to the maintenance database: drop, create, clone with
/// `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`, labels. One owner at a time.
public final class ClusterAdmin: @unchecked Sendable {
    public let connection: PostgresConnection
    /// The file_copy_method in effect for this session: "clone" (PostgreSQL 18 where the build supports it),
    /// "copy", or nil before PostgreSQL 18.
    public private(set) var fileCopyMethod: String?
    private var methodChosen = false

    public init(_ connection: PostgresConnection) { self.connection = connection }

    public static func connect(_ endpoint: DatabaseEndpoint, deadline: Deadline = .after(seconds: 10)) throws -> ClusterAdmin {
        ClusterAdmin(try endpoint.connectMaintenance(deadline: deadline))
    }

    public func close() { connection.close() }

    /// Whether a database exists, and its sagedev label if it has one, in one query.
    public func lookup(_ db: String) throws -> (exists: Bool, label: DatabaseLabel?) {
        let r = try connection.run("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = \(SQL.literal(db))",
                                   .clone, "looking up database \(db)")
        guard let row = r.last?.rows.first else { return (false, nil) }
        return (true, DatabaseLabel.parse(row.first ?? nil))
    }

    public func exists(_ db: String) throws -> Bool {
        try connection.run("SELECT 1 FROM pg_database WHERE datname = \(SQL.literal(db))", .clone, "looking up database \(db)")
            .last?.rows.isEmpty == false
    }

    /// The sagedev label of a database, if it exists and has one.
    public func label(_ db: String) throws -> DatabaseLabel? {
        let r = try connection.run("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = \(SQL.literal(db))",
                                   .clone, "reading the label of database \(db)")
        return DatabaseLabel.parse(r.last?.rows.first?.first ?? nil)
    }

    public func setLabel(_ db: String, _ label: DatabaseLabel) throws {
        _ = try connection.run("COMMENT ON DATABASE \(SQL.identifier(db)) IS \(SQL.literal(label.text))", .clone, "labelling database \(db)")
    }

    /// Databases whose name starts with `prefix`: name, size in bytes (0 without `sizes`: pg_database_size reads
    /// the size of every file of the database, about 2 ms for a few spares), label.
    public func databases(prefix: String, sizes: Bool = true) throws -> [(name: String, bytes: Int, label: DatabaseLabel?)] {
        let r = try connection.run("""
            SELECT datname, \(sizes ? "pg_database_size(oid)" : "0"), shobj_description(oid, 'pg_database')
            FROM pg_database WHERE starts_with(datname, \(SQL.literal(prefix))) ORDER BY datname
            """, .snapshot, "listing databases")
        return (r.last?.rows ?? []).compactMap { row in
            guard let n = row[0] else { return nil }
            return (n, Int(row[1] ?? "") ?? 0, DatabaseLabel.parse(row[2] ?? nil))
        }
    }

    /// DROP DATABASE … WITH (FORCE): terminates its sessions, even one inside an open transaction.
    public func drop(_ db: String) throws {
        _ = try connection.run("DROP DATABASE IF EXISTS \(SQL.identifier(db)) WITH (FORCE)", .clone, "dropping database \(db)",
                               deadline: .after(seconds: 120))
    }

    /// An empty database (from template0, which nobody can be connected to).
    public func createEmpty(_ db: String) throws {
        _ = try connection.run("CREATE DATABASE \(SQL.identifier(db)) TEMPLATE template0", .clone, "creating database \(db)",
                               deadline: .after(seconds: 120))
    }

    public func rename(_ db: String, to new: String) throws {
        _ = try connection.run("ALTER DATABASE \(SQL.identifier(db)) RENAME TO \(SQL.identifier(new))", .clone,
                               "renaming database \(db) to \(new)")
    }

    public func allowConnections(_ db: String, _ allow: Bool) throws {
        _ = try connection.run("ALTER DATABASE \(SQL.identifier(db)) ALLOW_CONNECTIONS \(allow)", .clone,
                               "\(allow ? "allowing" : "refusing") connections to \(db)")
    }

    /// Ends every other session on a database.
    public func terminateSessions(_ db: String) throws {
        _ = try connection.run("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = \(SQL.literal(db)) AND pid <> pg_backend_pid()",
                               .clone, "ending the sessions on \(db)")
    }

    /// The databases among `names`, and those whose name starts with `prefix`: whether each accepts connections.
    public func allowingConnections(_ names: [String], orStartingWith prefix: String) throws -> [String: Bool] {
        let list = names.map(SQL.literal).joined(separator: ", ")
        let r = try connection.run("SELECT datname, datallowconn FROM pg_database WHERE datname IN (\(list)) OR starts_with(datname, \(SQL.literal(prefix)))",
                                   .clone, "looking up databases")
        var out: [String: Bool] = [:]
        for row in r.last?.rows ?? [] { if let n = row[0] { out[n] = row[1] == "t" } }
        return out
    }

    /// The size of a database in bytes (0 when it does not exist).
    public func size(_ db: String) throws -> Int {
        let r = try connection.run("SELECT pg_database_size(oid) FROM pg_database WHERE datname = \(SQL.literal(db))", .clone, "measuring database \(db)")
        return Int((r.last?.rows.first?.first ?? nil) ?? "") ?? 0
    }

    /// Refuses new connections to `db` and ends the sessions on it, then waits (on the server, up to 5 s) until
    /// they are gone, so that the rename that follows does not wait for them itself. Returns how many were ended.
    @discardableResult
    public func closeToConnections(_ db: String) throws -> Int {
        let lit = SQL.literal(db)
        // Committed on its own first: in the same implicit transaction as the rest, it would not hold yet while
        // the ended sessions reconnect.
        try allowConnections(db, false)
        let r = try connection.run("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = \(lit) AND pid <> pg_backend_pid();
            DO $$ BEGIN
              FOR i IN 1..5000 LOOP
                PERFORM pg_stat_clear_snapshot();
                EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = \(lit) AND pid <> pg_backend_pid());
                PERFORM pg_sleep(0.001);
              END LOOP;
            END $$;
            """, .clone, "closing database \(db) to connections", deadline: .after(seconds: 30))
        return Int((r.first?.rows.first?.first ?? nil) ?? "") ?? 0
    }

    /// In one transaction: `db` (if it exists) becomes `aside`, and `incoming` becomes `db`, open to connections and
    /// without a label. At every moment the name `db` refers to the old database or the new one.
    public func swap(_ incoming: String, into db: String, aside: String?) throws {
        var sql = "BEGIN;"
        if let aside { sql += " ALTER DATABASE \(SQL.identifier(db)) RENAME TO \(SQL.identifier(aside));" }
        sql += " ALTER DATABASE \(SQL.identifier(incoming)) RENAME TO \(SQL.identifier(db));"
        sql += " ALTER DATABASE \(SQL.identifier(db)) ALLOW_CONNECTIONS true; COMMENT ON DATABASE \(SQL.identifier(db)) IS NULL; COMMIT"
        do {
            _ = try connection.simpleQuery(sql, deadline: .after(seconds: 60))
        } catch let e as PostgresError {
            _ = try? connection.simpleQuery("ROLLBACK", deadline: .after(seconds: 5))
            var m = "renaming \(incoming) into the place of \(db) failed: \(e.message)"
            if let st = e.sqlState { m += " (SQLSTATE \(st))" }
            throw DatabaseError(.clone, m, sqlState: e.sqlState, hint: e.hint)
        }
    }

    /// Picks `file_copy_method = clone` for this session on PostgreSQL 18 when the build supports it.
    private func chooseMethod() {
        guard !methodChosen else { return }
        methodChosen = true
        guard (try? connection.simpleQuery("SET file_copy_method = clone", deadline: .after(seconds: 10))) != nil else {
            // Before PostgreSQL 18 the setting does not exist; a build without copy_file_range refuses "clone".
            fileCopyMethod = (try? connection.scalar("SELECT current_setting('file_copy_method', true)", deadline: .after(seconds: 10))) ?? nil
            return
        }
        fileCopyMethod = "clone"
    }

    /// `CREATE DATABASE target TEMPLATE source STRATEGY FILE_COPY`. The source must have no other sessions: with
    /// `exclusive`, its sessions are ended first (the server then waits up to 5 s for them to go; a session that
    /// connects meanwhile gets ended on the next of 3 tries). If cloning fails (a filesystem without
    /// copy_file_range), the copy is retried with `file_copy_method = copy`. Returns the method used.
    @discardableResult
    public func clone(_ source: String, to target: String, exclusive: Bool) throws -> String {
        chooseMethod()
        let sql = "CREATE DATABASE \(SQL.identifier(target)) TEMPLATE \(SQL.identifier(source)) STRATEGY FILE_COPY"
        var attempt = 0
        while true {
            attempt += 1
            if exclusive { try terminateSessions(source) }
            do {
                _ = try connection.simpleQuery(sql, deadline: .after(seconds: 600))
                return fileCopyMethod ?? "file_copy"
            } catch let e as PostgresError where e.sqlState == "55006" && exclusive && attempt < 3 {
                continue
            } catch let e as PostgresError where e.kind == .server && fileCopyMethod == "clone" && e.sqlState != "55006" && e.sqlState != "42P04" && e.sqlState != "3D000" {
                // Cloning is not possible on this filesystem: copy the files instead, and keep doing so on this session.
                do {
                    _ = try connection.run("SET file_copy_method = copy", .clone, "switching file_copy_method to copy")
                } catch {
                    // The session did not survive the failure: what failed is the copy, not the switch.
                    throw DatabaseError(.clone, "copying database \(source) to \(target) failed: \(e.message)\(e.sqlState.map { " (SQLSTATE \($0))" } ?? "")", sqlState: e.sqlState, hint: e.hint)
                }
                fileCopyMethod = "copy"
                _ = try connection.run(sql, .clone, "copying database \(source) to \(target) (after cloning failed: \(e.message))",
                                       deadline: .after(seconds: 600))
                return "copy"
            } catch let e as PostgresError {
                var m = "copying database \(source) to \(target) failed: \(e.message)"
                if let s = e.sqlState { m += " (SQLSTATE \(s))" }
                if e.sqlState == "55006" { m += "; another session uses \(source): stop it (or the backend) and try again" }
                throw DatabaseError(.clone, m, sqlState: e.sqlState, hint: e.hint)
            }
        }
    }
}
