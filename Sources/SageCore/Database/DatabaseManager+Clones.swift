import SageSystem

extension DatabaseManager {
    public struct Clone: Codable, Sendable, Equatable {
        public var name: String
        public var database: String
        public var created: Double
        public var bytes: Int
    }

    /// A new database `<db>__clone_<name>` from the template, for a test or a test worker: a ready copy renamed
    /// (milliseconds) when one is there, else a copy made now. Clones take no operation lock, so they run side by
    /// side with each other; copies of the template never overlap a refresh of it. `name` nil picks one.
    public func clone(_ name: String?, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = config
        let db = c.postgres.database
        let name = name ?? DatabaseManager.generatedCloneName()
        let target = try DatabaseNames.clone(name, for: db)
        let r = StepRecorder("db clone", sink: sink, logs: logs)
        defer { cloneChanges.withValue { $0 &+= 1 } }
        return try withAdmin(c) { admin in
            if try admin.exists(target) {
                throw DatabaseError(.clone, "clone \"\(name)\" exists already (\(target)); pick another name, or drop it with 'sagedev db drop-clone \(name)'")
            }
            let template = TemplateManager(database: db)
            let key = try templateKey(c)
            let status = try template.status(admin, key: key)
            guard status == .current else {
                throw DatabaseError(.clone, "the template \(template.templateName) is \(status.description), and a clone is a copy of it; run 'sagedev reset-db --yes' once to rebuild it")
            }
            var source = ""
            try r.step("clone") {
                if let spare = try copies.take(admin, db: db, key: key, as: target) {
                    source = "ready copy"
                    return "\(spare), a ready copy of \(template.templateName), renamed to \(target)"
                }
                let method = try copies.copyTemplate(admin, db: db, into: target)
                source = "copy"
                return "copied \(template.templateName) to \(target) (no ready copy; STRATEGY FILE_COPY, file_copy_method=\(method))"
            }
            try admin.setLabel(target, DatabaseLabel(kind: "clone", fields: ["name": name, "created": String(wallClockSeconds())]))
            refillInBackground()
            var cc = c
            cc.postgres.database = target
            return r.report {
                $0.name = name; $0.database = target; $0.source = source
                $0.url = cc.postgresURL(redacted: false); $0.redactedUrl = cc.postgresURL(redacted: true)
            }
        }
    }

    /// Eight random hexadecimal digits.
    static func generatedCloneName() -> String {
        let hex = String(UInt32.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    public func clones() throws -> [Clone] {
        let c = config
        return try withAdmin(c) { admin in
            return try cloneList(admin, c.postgres.database)
        }
    }

    func cloneList(_ admin: ClusterAdmin, _ db: String) throws -> [Clone] {
        let prefix = DatabaseNames.clonePrefix(for: db)
        return try admin.databases(prefix: prefix).map { d in
            Clone(name: String(d.name.dropFirst(prefix.count)), database: d.name,
                  created: Double(d.label?.fields["created"] ?? "") ?? 0, bytes: d.bytes)
        }.sorted { $0.created < $1.created }
    }

    /// Drops clone `name`, or every clone when `name` is nil.
    public func dropClones(_ name: String?, sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        let c = config
        let db = c.postgres.database
        let r = StepRecorder("db drop-clone", sink: sink, logs: logs)
        defer { cloneChanges.withValue { $0 &+= 1 } }
        return try withAdmin(c) { admin in
            var dropped: [String] = []
            if let name {
                let target = try DatabaseNames.clone(name, for: db)
                guard try admin.exists(target) else {
                    throw DatabaseError(.clone, "there is no clone \"\(name)\"; see 'sagedev db clones'")
                }
                try r.step("drop clone") { try admin.drop(target); return target }
                dropped = [name]
            } else {
                let all = try cloneList(admin, db)
                try r.step("drop clones") {
                    for clone in all { try admin.drop(clone.database); dropped.append(clone.name) }
                    return all.isEmpty ? "there were none" : "\(all.count) clone\(all.count == 1 ? "" : "s")"
                }
            }
            return r.report { $0.dropped = dropped }
        }
    }
}
