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
        let (exists, label) = try admin.lookup(templateName)
        guard exists else { return .missing }
        guard let stored = label?.fields["key"], label?.kind == "template" else { return .stale(storedKey: nil) }
        return stored == key ? .current : .stale(storedKey: stored)
    }

    /// Copies `source` (the app database, or a database just built by a replay) into a new template, then swaps
    /// it in: until the swap, the old template stays usable, so a failed refresh never leaves a half-made template
    /// behind. Sessions on `source` are ended. The ready copies made from the old template are now stale (their
    /// key differs), and the next refill replaces them. Returns the copy method.
    @discardableResult
    public func refresh(_ admin: ClusterAdmin, key: String, from source: String? = nil) throws -> String {
        let source = source ?? database
        let build = DatabaseNames.templateBuild(for: database)
        try admin.drop(build)
        let method = try admin.clone(source, to: build, exclusive: true)
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
}
