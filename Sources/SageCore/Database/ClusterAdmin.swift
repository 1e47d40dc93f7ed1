import SageSystem
import SageWire

/// Names of the databases sagedev keeps next to the app database. PostgreSQL truncates identifiers at 63 bytes,
/// so a long app database name is shortened and given a hash to stay unique.
public enum DatabaseNames {
    public static let maximumBytes = 63

    public static func template(for db: String) -> String { fit(db, "__sagedev_template") }
    static func templateBuild(for db: String) -> String { fit(db, "__sagedev_template_new") }
    static func restoreScratch(for db: String) -> String { fit(db, "__sagedev_restore") }
    /// A copy of the template made ahead of time, renamed into place by the next reset.
    public static func spare(for db: String) -> String { fit(db, "__sagedev_spare") }
    public static func snapshotPrefix(for db: String) -> String { fit(db, "__sagedev_snap_") }

    /// The database that holds snapshot `name`.
    public static func snapshot(_ name: String, for db: String) throws -> String {
        try validateSnapshotName(name, for: db)
        return snapshotPrefix(for: db) + name
    }

    /// Letters, digits, '-' and '_', starting with a letter or digit; short enough to fit the database name.
    public static func validateSnapshotName(_ name: String, for db: String) throws {
        let room = maximumBytes - snapshotPrefix(for: db).utf8.count
        let ok = !name.isEmpty && name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
        } && name.utf8.first.map { $0 != 0x2D && $0 != 0x5F } == true
        guard ok, name.utf8.count <= room else {
            throw DatabaseError(.snapshot, "invalid snapshot name \"\(name.prefix(80))\": use 1 to \(room) letters, digits, '-' or '_', starting with a letter or digit")
        }
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

    /// Databases whose name starts with `prefix`: name, size in bytes, label.
    public func databases(prefix: String) throws -> [(name: String, bytes: Int, label: DatabaseLabel?)] {
        let r = try connection.run("""
            SELECT datname, pg_database_size(oid), shobj_description(oid, 'pg_database')
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
                _ = try connection.run("SET file_copy_method = copy", .clone, "switching file_copy_method to copy")
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
