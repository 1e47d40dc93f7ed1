import Foundation
import Dispatch

// The control-socket commands of the database layer. Each streams its steps as `database-step` events and ends
// with the operation's `DatabaseReport`, or an error whose `sql` carries the file, line and SQLSTATE of a failed
// SQL file. A new operation is one request type below and one `add` line in `register(on:)`.

public struct ResetDatabaseRequest: ControlRequest {
    public static let command = "reset-db"
    public typealias Response = DatabaseReport
    public var keepCache: Bool
    public var seed: Bool
    public var replay: Bool
    /// Stop the services that use the database around the swap (the default keeps them running).
    public var restartApps: Bool
    public init(keepCache: Bool = false, seed: Bool = true, replay: Bool = false, restartApps: Bool = false) {
        self.keepCache = keepCache; self.seed = seed; self.replay = replay; self.restartApps = restartApps
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        keepCache = try c.decodeIfPresent(Bool.self, forKey: .keepCache) ?? false
        seed = try c.decodeIfPresent(Bool.self, forKey: .seed) ?? true
        replay = try c.decodeIfPresent(Bool.self, forKey: .replay) ?? false
        restartApps = try c.decodeIfPresent(Bool.self, forKey: .restartApps) ?? false
    }
    enum CodingKeys: String, CodingKey { case keepCache, seed, replay, restartApps }
}

public struct SeedRequest: ControlRequest {
    public static let command = "seed"
    public typealias Response = DatabaseReport
    public init() {}
}

public struct MigrateRequest: ControlRequest {
    public static let command = "migrate"
    public typealias Response = DatabaseReport
    public init() {}
}

public struct SnapshotRequest: ControlRequest {
    public static let command = "db-snapshot"
    public typealias Response = DatabaseReport
    public var name: String
    public init(name: String) { self.name = name }
}

public struct RestoreSnapshotRequest: ControlRequest {
    public static let command = "db-restore"
    public typealias Response = DatabaseReport
    public var name: String
    public var keepCache: Bool
    public init(name: String, keepCache: Bool = false) { self.name = name; self.keepCache = keepCache }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        keepCache = try c.decodeIfPresent(Bool.self, forKey: .keepCache) ?? false
    }
    enum CodingKeys: String, CodingKey { case name, keepCache }
}

public struct ListSnapshotsRequest: ControlRequest {
    public static let command = "db-snapshots"
    public typealias Response = SnapshotList
    public init() {}
}

public struct SnapshotList: Codable, Sendable, Equatable {
    public var snapshots: [DatabaseManager.Snapshot]
}

public struct DropSnapshotRequest: ControlRequest {
    public static let command = "db-drop-snapshot"
    public typealias Response = DatabaseReport
    public var name: String
    public init(name: String) { self.name = name }
}

public struct BackupRequest: ControlRequest {
    public static let command = "db-backup"
    public typealias Response = DatabaseReport
    public init() {}
}

public struct RestoreBackupRequest: ControlRequest {
    public static let command = "db-restore-backup"
    public typealias Response = DatabaseReport
    public var file: String
    public var keepCache: Bool
    public init(file: String, keepCache: Bool = false) { self.file = file; self.keepCache = keepCache }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decode(String.self, forKey: .file)
        keepCache = try c.decodeIfPresent(Bool.self, forKey: .keepCache) ?? false
    }
    enum CodingKeys: String, CodingKey { case file, keepCache }
}

public struct CloneRequest: ControlRequest {
    public static let command = "db-clone"
    public typealias Response = DatabaseReport
    /// nil: the daemon makes one up.
    public var name: String?
    public init(name: String? = nil) { self.name = name }
}

public struct ListClonesRequest: ControlRequest {
    public static let command = "db-clones"
    public typealias Response = CloneList
    public init() {}
}

public struct CloneList: Codable, Sendable, Equatable {
    public var clones: [DatabaseManager.Clone]
}

public struct DropCloneRequest: ControlRequest {
    public static let command = "db-drop-clone"
    public typealias Response = DatabaseReport
    /// One clone, or every clone with `all`.
    public var name: String?
    public var all: Bool
    public init(name: String? = nil, all: Bool = false) { self.name = name; self.all = all }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        all = try c.decodeIfPresent(Bool.self, forKey: .all) ?? false
    }
    enum CodingKeys: String, CodingKey { case name, all }
}

extension ControlError {
    /// A database failure as the client sees it: the message, and where a SQL file failed.
    init(_ e: DatabaseError) {
        self.init(code: "database", message: e.message,
                  sql: SQLErrorLocation(kind: e.code.rawValue, file: e.file, line: e.line, column: e.column, sqlState: e.sqlState, hint: e.hint))
    }
}

extension DatabaseManager {
    public func register(on daemon: Daemon) {
        /// One database command: its work runs off the control queue, with its steps streamed as they finish.
        func add<R: ControlRequest>(_ type: R.Type, _ work: @escaping @Sendable (DatabaseManager, R, @escaping DatabaseStepSink) throws -> R.Response) {
            daemon.handle(R.self) { [weak self] request, reply in
                guard let self else { return }
                DispatchQueue.global().async {
                    do { reply.succeed(try work(self, request) { reply.event(.databaseStep(DatabaseStepEvent($0))) }) }
                    catch let e as DatabaseError { reply.fail(ControlError(e)) }
                    catch { reply.fail("database", "\(error)") }
                }
            }
        }
        add(ResetDatabaseRequest.self) { m, a, sink in
            try m.reset(ResetOptions(keepCache: a.keepCache, seed: a.seed, replay: a.replay, restartApps: a.restartApps), sink: sink)
        }
        add(SeedRequest.self) { m, _, sink in try m.seed(sink: sink) }
        add(MigrateRequest.self) { m, _, sink in try m.migrate(sink: sink) }
        add(SnapshotRequest.self) { m, a, sink in try m.snapshot(a.name, sink: sink) }
        add(RestoreSnapshotRequest.self) { m, a, sink in try m.restore(a.name, keepCache: a.keepCache, sink: sink) }
        add(ListSnapshotsRequest.self) { m, _, _ in SnapshotList(snapshots: try m.snapshots()) }
        add(DropSnapshotRequest.self) { m, a, sink in try m.dropSnapshot(a.name, sink: sink) }
        add(CloneRequest.self) { m, a, sink in try m.clone(a.name, sink: sink) }
        add(ListClonesRequest.self) { m, _, _ in CloneList(clones: try m.clones()) }
        add(DropCloneRequest.self) { m, a, sink in
            guard a.all || a.name != nil else { throw DatabaseError(.usage, "a clone NAME or --all is required") }
            return try m.dropClones(a.all ? nil : a.name, sink: sink)
        }
        add(BackupRequest.self) { m, _, sink in try m.backup(sink: sink) }
        add(RestoreBackupRequest.self) { m, a, sink in try m.restoreBackup(a.file, keepCache: a.keepCache, sink: sink) }
    }
}
