import SageSystem

/// The migrated and seeded copy of the app database, `<db>__sagedev_template`, that a reset clones.
/// Its label (COMMENT ON DATABASE) holds the key it was built for: the hash of the migration and seed files and
/// the migrate and seed commands. A different key on disk means the template is stale.
public struct TemplateManager: Sendable {
    public enum Status: Sendable, Equatable {
        case missing
        case stale(storedKey: String?)
        case current

        public var description: String {
            switch self {
            case .missing: return "missing"
            case .stale: return "stale (migrations, seeds or their commands changed)"
            case .current: return "current"
            }
        }
    }

    public let database: String
    public var templateName: String { DatabaseNames.template(for: database) }

    public init(database: String) { self.database = database }

    public func status(_ admin: ClusterAdmin, key: String) throws -> Status {
        guard try admin.exists(templateName) else { return .missing }
        let label = try admin.label(templateName)
        guard let stored = label?.fields["key"], label?.kind == "template" else { return .stale(storedKey: nil) }
        return stored == key ? .current : .stale(storedKey: stored)
    }

    /// Copies the app database into a new template, then swaps it in: until the swap, the old template stays
    /// usable, so a failed refresh never leaves a half-made template behind. Sessions on the app database are ended.
    /// Returns the copy method.
    @discardableResult
    public func refresh(_ admin: ClusterAdmin, key: String) throws -> String {
        let build = DatabaseNames.templateBuild(for: database)
        // A spare made from the old template is of no use any more.
        try admin.drop(spareName)
        try admin.drop(build)
        let method = try admin.clone(database, to: build, exclusive: true)
        do {
            try admin.setLabel(build, DatabaseLabel(kind: "template", fields: ["key": key, "created": String(Int(wallClockSeconds()))]))
            // Nobody may connect to the template: a session there would block the next reset's copy.
            try admin.allowConnections(build, false)
            try admin.drop(templateName)
            try admin.rename(build, to: templateName)
        } catch {
            try? admin.drop(build)
            throw error
        }
        return method
    }

    /// Creates the app database as a copy of the template (the app database must not exist).
    @discardableResult
    public func recreate(_ admin: ClusterAdmin) throws -> String {
        try admin.clone(templateName, to: database, exclusive: false)
    }

    public func drop(_ admin: ClusterAdmin) throws { try admin.drop(templateName) }

    // MARK: the spare copy

    public var spareName: String { DatabaseNames.spare(for: database) }

    /// Whether a spare copy of the template with this key is ready.
    public func spareIsReady(_ admin: ClusterAdmin, key: String) throws -> Bool {
        guard let label = try admin.label(spareName) else { return false }
        return label.kind == "spare" && label.fields["key"] == key
    }

    /// Copies the template into the spare (replacing a stale one). Returns false when the spare was ready already.
    @discardableResult
    public func prepareSpare(_ admin: ClusterAdmin, key: String) throws -> Bool {
        if try spareIsReady(admin, key: key) { return false }
        try admin.drop(spareName)
        try admin.clone(templateName, to: spareName, exclusive: false)
        // Labelled last: an interrupted copy is never taken for a ready one.
        try admin.setLabel(spareName, DatabaseLabel(kind: "spare", fields: ["key": key]))
        return true
    }

    /// Renames the ready spare into the (dropped) app database's place.
    public func takeSpare(_ admin: ClusterAdmin) throws {
        _ = try admin.connection.run("ALTER DATABASE \(SQL.identifier(spareName)) RENAME TO \(SQL.identifier(database)); COMMENT ON DATABASE \(SQL.identifier(database)) IS NULL",
                                     .clone, "renaming \(spareName) to \(database)")
    }
}
