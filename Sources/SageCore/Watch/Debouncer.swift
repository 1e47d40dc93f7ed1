/// One path the watcher saw change.
public struct ChangedPath: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case created, modified, removed
    }
    /// Absolute path.
    public var path: String
    public var kind: Kind
    public var isDirectory: Bool

    public init(_ path: String, _ kind: Kind, isDirectory: Bool = false) {
        self.path = path; self.kind = kind; self.isDirectory = isDirectory
    }
    public var description: String { "\(kind.rawValue) \(path)\(isDirectory ? "/" : "")" }
}

/// Batches a storm of changes (an editor's save, a `git checkout`, a generator writing thousands of files)
/// into one: a batch is due once no change has arrived for the quiet period. A pure value: the caller passes
/// the time (nanoseconds on the monotonic clock, see `monotonicNanoseconds()`), so tests drive it directly.
public struct Debouncer: Sendable, Equatable {
    /// How long the stream must stay quiet before the batch is due.
    public let quietPeriodNanoseconds: UInt64
    /// If set, a batch is due this long after its first change even while changes keep coming.
    public let maximumDelayNanoseconds: UInt64?

    private var order: [String] = []          // first-seen order; may hold paths that cancelled out
    private var ordered: Set<String> = []
    private var pending: [String: ChangedPath] = [:]
    private var firstChangeAt: UInt64?
    private var lastChangeAt: UInt64?

    public init(quietPeriodMilliseconds: Int = 50, maximumDelayMilliseconds: Int? = nil) {
        quietPeriodNanoseconds = UInt64(max(0, quietPeriodMilliseconds)) * 1_000_000
        maximumDelayNanoseconds = maximumDelayMilliseconds.map { UInt64(max(0, $0)) * 1_000_000 }
    }

    public var isEmpty: Bool { pending.isEmpty }
    /// Distinct paths waiting in the current batch.
    public var pendingCount: Int { pending.count }

    /// Adds changes seen at `now`. Repeated changes to one path merge into one entry, keeping the order in which
    /// paths first appeared; a path created and removed inside one batch cancels out (an editor's temp file).
    public mutating func add(_ changes: [ChangedPath], at now: UInt64) {
        guard !changes.isEmpty else { return }
        if pending.isEmpty {
            // Nothing pending (or everything cancelled out): this change starts a new batch.
            order.removeAll(keepingCapacity: true)
            ordered.removeAll(keepingCapacity: true)
            firstChangeAt = nil
            lastChangeAt = nil
        }
        for change in changes { merge(change) }
        if firstChangeAt == nil { firstChangeAt = now }
        lastChangeAt = max(lastChangeAt ?? now, now)
    }

    public mutating func add(_ change: ChangedPath, at now: UInt64) { add([change], at: now) }

    /// When the pending batch becomes due, or nil when nothing is pending.
    public var dueAt: UInt64? {
        guard let last = lastChangeAt, let first = firstChangeAt, !pending.isEmpty else { return nil }
        var due = last &+ quietPeriodNanoseconds
        if let cap = maximumDelayNanoseconds { due = min(due, first &+ cap) }
        return due
    }

    /// Milliseconds until the batch is due (rounded up, for poll(2)); nil when nothing is pending.
    public func millisecondsUntilDue(at now: UInt64) -> Int32? {
        guard let due = dueAt else { return nil }
        if due <= now { return 0 }
        let ms = (due - now + 999_999) / 1_000_000
        return ms > UInt64(Int32.max) ? Int32.max : Int32(ms)
    }

    /// The batch, if it is due at `now`; nil otherwise. The debouncer is empty afterwards.
    public mutating func flush(at now: UInt64) -> [ChangedPath]? {
        guard let due = dueAt, now >= due else { return nil }
        return flushNow()
    }

    /// The pending batch regardless of the quiet period (for shutdown); nil when nothing is pending.
    public mutating func flushNow() -> [ChangedPath]? {
        let batch = order.compactMap { pending[$0] }
        order.removeAll(keepingCapacity: true)
        ordered.removeAll(keepingCapacity: true)
        pending.removeAll(keepingCapacity: true)
        firstChangeAt = nil
        lastChangeAt = nil
        return batch.isEmpty ? nil : batch
    }

    private mutating func merge(_ change: ChangedPath) {
        guard let earlier = pending[change.path] else {
            pending[change.path] = change
            if ordered.insert(change.path).inserted { order.append(change.path) }
            return
        }
        var merged = change
        switch (earlier.kind, change.kind) {
        case (.created, .modified), (.created, .created):
            merged.kind = .created
        case (.created, .removed):
            // Came and went within the batch: nothing to act on.
            pending[change.path] = nil
            return
        case (.removed, .created), (.removed, .modified):
            merged.kind = .modified  // replaced
        default:
            break
        }
        pending[change.path] = merged
    }
}
