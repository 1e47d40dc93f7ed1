import Foundation
import SageSystem
import SageWire

/// One migration or seed file: its name (what the history tables record), where it is, its text and checksum.
public struct SQLFile: Sendable, Equatable {
    public var name: String
    public var path: String
    public var text: String
    /// Lower-case hex SHA-256 of the file's bytes.
    public var checksum: String

    public init(name: String, path: String, text: String) {
        self.name = name; self.path = path; self.text = text
        self.checksum = SQLFile.checksum(Array(text.utf8))
    }

    public static func checksum(_ bytes: [UInt8]) -> String { hex(SHA256.hash(bytes)) }

    /// Whether the file holds no statement at all (only blanks and `--` comments).
    public var isBlank: Bool {
        // By scalars: Swift treats "\r\n" as one Character, which a split on "\n" would not see.
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: true).allSatisfy { line in
            let t = line.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
            return t.isEmpty || (t.count >= 2 && t.first == "-" && t.dropFirst().first == "-")
        }
    }
}

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

public enum SQLFiles {
    /// The largest file read (a generated seed can be tens of megabytes).
    public static let maximumBytes = 1 << 30

    /// The `*.sql` files of a directory in name order (byte order, so `010_` sorts after `009_`).
    /// A missing directory holds no files; an unreadable file is an error naming it.
    public static func load(directory: String) throws -> [SQLFile] {
        guard FileDescriptor.isDirectory(directory) else { return [] }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw DatabaseError(.io, "cannot list \(directory): \(error.localizedDescription); check its permissions")
        }
        return try sqlNames(names).map { name in
                let path = directory + "/" + name
                guard let bytes = FileDescriptor.readFile(path, limit: maximumBytes) else {
                    throw DatabaseError(.io, "cannot read \(path); check that it is a readable file under 1 GiB")
                }
                return SQLFile(name: name, path: path, text: String(decoding: bytes, as: UTF8.self))
            }
    }

    static func sqlNames(_ names: [String]) -> [String] {
        names.filter { $0.hasSuffix(".sql") && !$0.hasPrefix(".") }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// A directory from the configuration: relative paths are taken from the project directory.
    public static func resolve(_ directory: String, in project: String) -> String {
        directory.hasPrefix("/") ? directory : project + "/" + directory
    }
}

/// The name and checksum of a SQL file, without its text: what the template key needs.
public struct SQLFileDigest: Sendable, Equatable {
    public var name: String
    public var checksum: String
    public init(name: String, checksum: String) { self.name = name; self.checksum = checksum }
}

/// Checksums of SQL files remembered by path and the file's stat(2) stamp (inode, size, modification and change
/// times, through a symbolic link), so that a reset checks a template against tens of megabytes of seeds without
/// reading and hashing them again each time. One stat per file: no account lookups, no Foundation attributes.
public final class SQLChecksumCache: @unchecked Sendable {
    private let entries = Locked([String: (FileStamp, String)]())
    public init() {}

    /// The `*.sql` files of a directory in name order, with their checksums.
    public func digests(directory: String) throws -> [SQLFileDigest] {
        guard FileDescriptor.isDirectory(directory) else { return [] }
        let names: [String]
        do { names = try DirectoryScan.entries(of: directory).map(\.name) } catch {
            throw DatabaseError(.io, "cannot list \(directory): \(error); check its permissions")
        }
        return try SQLFiles.sqlNames(names).map { name in
            let path = directory + "/" + name
            let stamp = FileStamp.following(path)
            if let stamp, let (known, sum) = entries.withValue({ $0[path] }), known == stamp {
                return SQLFileDigest(name: name, checksum: sum)
            }
            guard let bytes = FileDescriptor.readFile(path, limit: SQLFiles.maximumBytes) else {
                throw DatabaseError(.io, "cannot read \(path); check that it is a readable file under 1 GiB")
            }
            // The same bytes the loader hashes (its text decodes them as UTF-8).
            let sum = SQLFile.checksum(Array(String(decoding: bytes, as: UTF8.self).utf8))
            // Only when the file still is what was read.
            if let stamp, stamp.size == Int64(bytes.count), FileStamp.following(path) == stamp { entries.withValue { $0[path] = (stamp, sum) } }
            return SQLFileDigest(name: name, checksum: sum)
        }
    }

    /// Remembers the checksums of files just loaded whole.
    func remember(_ files: [SQLFile]) {
        for f in files {
            guard let stamp = FileStamp.following(f.path) else { continue }
            // Only when the file still is what was read.
            if stamp.size == Int64(f.text.utf8.count) { entries.withValue { $0[f.path] = (stamp, f.checksum) } }
        }
    }
}

/// Maps a server error position to a place in the SQL text.
public enum SQLLocation {
    /// PostgreSQL reports ErrorResponse positions as 1-based character (not byte) offsets into the query string.
    /// Returns the 1-based line and column, or nil when the position lies outside the text.
    public static func lineAndColumn(ofPosition position: Int, in text: String) -> (line: Int, column: Int)? {
        guard position >= 1 else { return nil }
        var line = 1, column = 1, index = 1
        for scalar in text.unicodeScalars {
            if index == position { return (line, column) }
            if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
            index += 1
        }
        // One past the end: errors such as "syntax error at end of input" point there.
        return index == position ? (line, column) : nil
    }

    /// The text of a 1-based line, without its line break.
    public static func lineText(_ line: Int, in text: String) -> String? {
        guard line >= 1 else { return nil }
        var n = 1
        for l in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            if n == line {
                var scalars = String.UnicodeScalarView(l)
                if scalars.last == "\r" { scalars.removeLast() }
                return String(scalars)
            }
            n += 1
        }
        return nil
    }
}

/// The template's key: a hash of everything that decides what a freshly migrated and seeded database holds.
/// Any change to a migration or seed file (name or content) or to the migrate or seed command changes it.
public enum TemplateKey {
    public static func compute(migrations: [SQLFile], seeds: [SQLFile], migrateCommand: String, seedCommand: String) -> String {
        compute(migrationDigests: migrations.map { SQLFileDigest(name: $0.name, checksum: $0.checksum) },
                seedDigests: seeds.map { SQLFileDigest(name: $0.name, checksum: $0.checksum) },
                migrateCommand: migrateCommand, seedCommand: seedCommand)
    }

    public static func compute(migrationDigests migrations: [SQLFileDigest], seedDigests seeds: [SQLFileDigest],
                               migrateCommand: String, seedCommand: String) -> String {
        var h = SHA256()
        func field(_ s: String) {
            let bytes = Array(s.utf8)
            // Length-prefixed, so that no two different inputs concatenate to the same bytes.
            h.update(Array("\(bytes.count):".utf8))
            h.update(bytes)
        }
        field("sagedev-template-v1")
        field("migrations"); field(String(migrations.count))
        for f in migrations { field(f.name); field(f.checksum) }
        field("seeds"); field(String(seeds.count))
        for f in seeds { field(f.name); field(f.checksum) }
        field("migrate-command"); field(migrateCommand)
        field("seed-command"); field(seedCommand)
        return hex(h.finalize())
    }
}

/// SQL quoting for the few values sagedev puts into statements itself.
public enum SQL {
    public static func identifier(_ s: String) -> String { quoteIdentifier(s) }

    /// A string literal; backslashes switch to the E'' form so that the result does not depend on
    /// standard_conforming_strings.
    public static func literal(_ s: String) -> String {
        if s.contains("\\") {
            return "E'" + s.replacingAll("\\", "\\\\").replacingAll("'", "''") + "'"
        }
        return "'" + s.replacingAll("'", "''") + "'"
    }
}
