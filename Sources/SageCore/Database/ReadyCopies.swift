import Dispatch
import SageSystem

/// The ready copies of the template that resets and clones take: `<db>__sagedev_spare_<n>`, labelled
/// `sagedev spare v1 key=…` once complete (an unlabelled one is an interrupted copy). They are refilled in the
/// background, one copy at a time, after the free disk space was checked against the template's size.
final class ReadyCopies: @unchecked Sendable {
    /// How many copies to keep ready (SAGEDEV_RESET_SPARES; 0 copies at reset time).
    let target: @Sendable () -> Int
    /// Bytes free where the database files live; nil when unknown (the copy then goes ahead).
    let freeBytes: @Sendable () -> Int?
    /// Copies of the template run inside this queue side by side; replacing the template runs as a barrier, so
    /// that no copy reads a template that is being dropped.
    let templateAccess = DispatchQueue(label: "sagedev.database.template", attributes: .concurrent)
    private let refillQueue = DispatchQueue(label: "sagedev.database.refill", qos: .background)
    private let requested = Locked(false)
    /// Refills carried out so far (status reads the ready copies again after one).
    let refills = Locked(0)
    /// Why the last refill stopped short (no room on disk, a failed copy), for `status` and the reset's output.
    let problem = Locked<String?>(nil)

    init(target: @escaping @Sendable () -> Int, freeBytes: @escaping @Sendable () -> Int?) {
        self.target = target; self.freeBytes = freeBytes
    }

    /// Ready copies of the template built for `key`, by number.
    func ready(_ admin: ClusterAdmin, db: String, key: String) throws -> [String] {
        let prefix = DatabaseNames.sparePrefix(for: db)
        return try admin.databases(prefix: prefix, sizes: false)
            .filter { $0.label?.kind == "spare" && $0.label?.fields["key"] == key }
            .map(\.name)
            .sorted { (Int($0.dropFirst(prefix.count)) ?? 0) < (Int($1.dropFirst(prefix.count)) ?? 0) }
    }

    /// Renames a ready copy to `name` and returns which one it was, or nil when none is ready. Taking one is a
    /// rename, so two takers never get the same copy: the one that loses the race tries the next.
    func take(_ admin: ClusterAdmin, db: String, key: String, as name: String) throws -> String? {
        // SAGEDEV_RESET_SPARES=0 copies at reset time, even while copies kept under an earlier setting remain.
        guard target() > 0 else { return nil }
        for spare in try ready(admin, db: db, key: key) {
            do {
                try admin.rename(spare, to: name)
                return spare
            } catch let e as DatabaseError where e.sqlState == "3D000" || e.sqlState == "55006" {
                continue
            }
        }
        return nil
    }

    /// Copies the template into `target` (not under the barrier of a template refresh). Returns the copy method.
    @discardableResult
    func copyTemplate(_ admin: ClusterAdmin, db: String, into target: String) throws -> String {
        try templateAccess.sync {
            var attempt = 0
            while true {
                attempt += 1
                do { return try admin.clone(DatabaseNames.template(for: db), to: target, exclusive: false) }
                catch let e as DatabaseError where e.sqlState == "55006" && attempt < 5 {
                    // Something held the template for a moment (a copy that Postgres saw as a session): try again.
                    continue
                }
            }
        }
    }

    /// Asks for the copies to be topped up in the background; requests made meanwhile are merged into one.
    func refillInBackground(_ work: @escaping @Sendable () -> Void) {
        guard requested.withValue({ let was = $0; $0 = true; return !was }) else { return }
        refillQueue.async { [self] in
            requested.withValue { $0 = false }
            work()
            refills.withValue { $0 &+= 1 }
        }
    }

    /// Drops broken, stale and surplus copies and makes the missing ones. `key` is the template's current key.
    /// Returns lines for the database log.
    func refill(_ admin: ClusterAdmin, db: String, key: String) throws -> [String] {
        var notes: [String] = []
        let wanted = target()
        let prefix = DatabaseNames.sparePrefix(for: db)
        try admin.drop(DatabaseNames.legacySpare(for: db))
        var have = Set<Int>()
        for d in try admin.databases(prefix: prefix, sizes: false) {
            let n = Int(d.name.dropFirst(prefix.count)) ?? 0
            if n >= 1, n <= wanted, d.label?.kind == "spare", d.label?.fields["key"] == key { have.insert(n); continue }
            try admin.drop(d.name)
        }
        let template = DatabaseNames.template(for: db)
        for n in 1...max(1, wanted) where wanted > 0 && !have.contains(n) {
            let size = try admin.size(template)
            if let free = freeBytes(), free < size + size / 20 {
                let m = "not enough free disk space for another ready copy of \(template): \(formatBytes(free)) free, \(formatBytes(size + size / 20)) needed; resets copy the template at reset time until there is room"
                problem.withValue { $0 = m }
                notes.append(m)
                return notes
            }
            let name = DatabaseNames.spare(n, for: db)
            let started = monotonicNanoseconds()
            let method = try copyTemplate(admin, db: db, into: name)
            // Labelled last: an interrupted copy is never taken for a ready one.
            try admin.setLabel(name, DatabaseLabel(kind: "spare", fields: ["key": key]))
            notes.append("copied \(template) to \(name) in \(DatabaseStep.format(millisecondsSince(started))) (file_copy_method=\(method))")
        }
        problem.withValue { $0 = nil }
        return notes
    }
}
