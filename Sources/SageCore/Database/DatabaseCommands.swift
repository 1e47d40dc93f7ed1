import Foundation
import Dispatch

/// The control-socket commands of the database layer. Each streams its steps as events
/// (`{"event":"step","step":"reset-db","name":"drop database","ms":12.3,"detail":…,"message":…}`) and ends with
/// the operation's report, or an error whose result carries the file, line and SQLSTATE of a failed SQL file.
///
///   reset-db          {keepCache?, seed?, replay?}
///   seed, migrate     {}
///   db-snapshot       {name}          db-restore {name, keepCache?}
///   db-snapshots      {}              db-drop-snapshot {name}
///   db-backup         {}              db-restore-backup {file, keepCache?}
/// The arguments of a database command, read out of the request before the work moves to another thread.
struct DatabaseCommandArguments: Sendable {
    var name: String?
    var file: String?
    var keepCache: Bool
    var seed: Bool
    var replay: Bool

    init(_ a: [String: Any]) {
        name = a["name"] as? String; file = a["file"] as? String
        keepCache = a["keepCache"] as? Bool ?? false; seed = a["seed"] as? Bool ?? true; replay = a["replay"] as? Bool ?? false
    }

    func snapshotName() throws -> String {
        guard let name else { throw DatabaseError(.snapshot, "a snapshot NAME is required") }
        return name
    }
}

extension DatabaseManager {
    public static let commandNames = ["reset-db", "seed", "migrate", "db-snapshot", "db-restore", "db-snapshots",
                                      "db-drop-snapshot", "db-backup", "db-restore-backup"]

    public func register(on daemon: Daemon) {
        func add(_ name: String, _ work: @escaping @Sendable (DatabaseManager, DatabaseCommandArguments, @escaping DatabaseStepSink) throws -> [String: Any]) {
            daemon.register(name) { [weak self] request, connection in
                guard let self else { return }
                let id = request["id"] as? Int
                let args = DatabaseCommandArguments(request["args"] as? [String: Any] ?? [:])
                DispatchQueue.global().async {
                    let sink: DatabaseStepSink = { s in
                        connection.send(["id": id ?? NSNull(), "event": "step", "step": s.operation, "name": s.name,
                                         "ms": (s.milliseconds * 10).rounded() / 10, "detail": s.detail, "message": s.line])
                    }
                    do {
                        let result = try work(self, args, sink)
                        connection.send(["id": id ?? NSNull(), "ok": true, "result": result])
                    } catch let e as DatabaseError {
                        var details: [String: Any] = ["code": e.code.rawValue]
                        if let f = e.file { details["file"] = f }
                        if let l = e.line { details["line"] = l }
                        if let c = e.column { details["column"] = c }
                        if let s = e.sqlState { details["sqlState"] = s }
                        if let h = e.hint { details["hint"] = h }
                        connection.send(["id": id ?? NSNull(), "ok": false, "error": ["code": "database", "message": e.message], "result": details])
                    } catch {
                        connection.send(ControlProtocol.error(id: id, code: "database", "\(error)"))
                    }
                }
            }
        }
        add("reset-db") { m, a, sink in
            try m.reset(ResetOptions(keepCache: a.keepCache, seed: a.seed, replay: a.replay), sink: sink).json
        }
        add("seed") { m, _, sink in try m.seed(sink: sink).json }
        add("migrate") { m, _, sink in try m.migrate(sink: sink).json }
        add("db-snapshot") { m, a, sink in try m.snapshot(try a.snapshotName(), sink: sink).json }
        add("db-restore") { m, a, sink in try m.restore(try a.snapshotName(), keepCache: a.keepCache, sink: sink).json }
        add("db-snapshots") { m, _, _ in ["snapshots": try m.snapshots().map(\.json)] }
        add("db-drop-snapshot") { m, a, sink in try m.dropSnapshot(try a.snapshotName(), sink: sink).json }
        add("db-backup") { m, _, sink in try m.backup(sink: sink).json }
        add("db-restore-backup") { m, a, sink in
            guard let f = a.file else { throw DatabaseError(.backup, "a backup FILE is required") }
            return try m.restoreBackup(f, keepCache: a.keepCache, sink: sink).json
        }
    }
}
