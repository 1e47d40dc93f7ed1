import Foundation
import SageSystem

/// Backups in `.sagedev/backups`: `backup_YYYYMMDD_HHMMSS.sql.gz`, a plain `pg_dump` compressed with gzip (by
/// pg_dump itself). The runtime says how to run the client tools: the toolchain's over TCP natively, and
/// `docker compose exec` inside the postgres container under compose. The password reaches pg_dump and psql through
/// PGPASSWORD, never their arguments.
public struct BackupStore: Sendable {
    public static let kept = 7
    public let directory: String
    /// `pg_dump` or `psql` with connection flags (see `ServiceRuntime.postgresClient`).
    let client: @Sendable (String) throws -> PostgresClientCommand
    let environmentPath: String?

    public init(directory: String, environmentPath: String?, client: @escaping @Sendable (String) throws -> PostgresClientCommand) {
        self.directory = directory; self.client = client; self.environmentPath = environmentPath
    }

    // MARK: names

    static let stampFormatter: @Sendable () -> DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd_HHmmss"
        return f
    }

    /// `backup_20250102_030405.sql.gz`; a second backup in the same second gets `_2`, `_3`, ….
    public static func fileName(stamp: String, sequence: Int = 1) -> String {
        sequence <= 1 ? "backup_\(stamp).sql.gz" : "backup_\(stamp)_\(sequence).sql.gz"
    }

    /// The (stamp, sequence) of a backup file name, or nil for any other file.
    public static func parse(_ name: String) -> (stamp: String, sequence: Int)? {
        guard name.hasPrefix("backup_"), name.hasSuffix(".sql.gz") else { return nil }
        let core = name.dropFirst("backup_".count).dropLast(".sql.gz".count)
        let parts = core.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3,
              parts[0].count == 8, parts[1].count == 6,
              (parts[0] + parts[1]).allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        var seq = 1
        if parts.count == 3 { guard let n = Int(parts[2]), n >= 2 else { return nil }; seq = n }
        return (parts[0] + "_" + parts[1], seq)
    }

    /// Backup files, oldest first.
    public func list() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let parsed: [(name: String, stamp: String, sequence: Int)] = names.compactMap { n in
            BackupStore.parse(n).map { (n, $0.stamp, $0.sequence) }
        }
        let sorted = parsed.sorted { a, b in a.stamp != b.stamp ? a.stamp < b.stamp : a.sequence < b.sequence }
        return sorted.map { (f: (name: String, stamp: String, sequence: Int)) -> String in directory + "/" + f.name }
    }

    /// Deletes all but the newest `keep` backups; returns the deleted paths.
    public func prune(keep: Int) throws -> [String] {
        let all = list()
        guard all.count > keep else { return [] }
        let old = Array(all.prefix(all.count - keep))
        for p in old {
            do { try FileManager.default.removeItem(atPath: p) } catch {
                throw DatabaseError(.backup, "cannot delete old backup \(p): \(error.localizedDescription)")
            }
        }
        return old
    }

    /// An absolute path, a path relative to the project, or a bare name inside the backups directory.
    public func resolve(_ file: String) throws -> String {
        for p in [file, directory + "/" + file] where p.hasPrefix("/") && FileDescriptor.exists(p) { return p }
        throw DatabaseError(.backup, "no backup file \(file); 'sagedev db backup' writes them to \(directory)")
    }

    // MARK: dump and load

    /// Writes a new backup; returns its path and size.
    public func dump(config c: Config, now: Date = Date()) throws -> (String, Int) {
        let pgDump = try client("pg_dump")
        try FileDescriptor.makeDirectories(directory, mode: 0o700)
        let stamp = BackupStore.stampFormatter().string(from: now)
        var seq = 1
        while FileDescriptor.exists(directory + "/" + BackupStore.fileName(stamp: stamp, sequence: seq)) { seq += 1 }
        let path = directory + "/" + BackupStore.fileName(stamp: stamp, sequence: seq)
        // Written under a temporary name: a dump that fails half way never counts as a backup.
        let partial = path + ".partial"
        // The dump goes to stdout and the shell puts it in the file: the same whether pg_dump runs here or inside
        // a container. The file name and argv are positional parameters, never spliced into the script.
        let r = try Subprocess.run(["/bin/sh", "-c", "out=\"$1\"; shift; exec \"$@\" > \"$out\"", "sagedev-backup", partial]
                                   + pgDump.argv + ["--dbname", c.postgres.database, "--no-password", "--no-owner",
                                                    "--format=plain", "--compress=gzip:6"],
                                   environment: pgDump.environment, deadline: .after(seconds: 3600))
        guard r.status.isSuccess else {
            try? FileManager.default.removeItem(atPath: partial)
            throw DatabaseError(.backup, "pg_dump of database \(c.postgres.database) failed (\(r.status)): \(r.stderrText.trimmed); check that postgres runs ('sagedev status')")
        }
        do { try FileManager.default.moveItem(atPath: partial, toPath: path) } catch {
            throw DatabaseError(.backup, "cannot move \(partial) to \(path): \(error.localizedDescription)")
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        return (path, size)
    }

    /// Checks the gzip stream whole, then feeds it to psql in one transaction that stops at the first error.
    public func load(_ path: String, into db: String, config c: Config) throws {
        let psql = try client("psql")
        guard let gzip = ProcessEnvironment.which("gzip", path: environmentPath) else {
            throw DatabaseError(.backup, "gzip was not found on PATH; install it (for example apt-get install gzip)")
        }
        // The paths, names and psql's argv are positional parameters, never spliced into the script.
        let script = """
            set -e
            gzip="$1"; file="$2"; db="$3"; shift 3
            "$gzip" -t -- "$file"
            "$gzip" -dc -- "$file" | "$@" -X -q -v ON_ERROR_STOP=1 --single-transaction --no-password --dbname "$db" -f -
            """
        let r = try Subprocess.run(["/bin/sh", "-c", script, "sagedev-restore", gzip, path, db] + psql.argv,
                                   environment: psql.environment, deadline: .after(seconds: 3600))
        guard r.status.isSuccess else {
            let err = r.stderrText.trimmed.split(separator: "\n").suffix(10).joined(separator: "\n  ")
            throw DatabaseError(.backup, "restoring \(path) failed (\(r.status)):\n  \(err)\n  the app database was not touched")
        }
    }
}
