import Dispatch
import SageSystem

/// Watches the stack's sources and turns each debounced batch of changes into engine actions:
/// a source change reloads (self) or restarts the service, a manifest change installs then restarts, a `.env`
/// change restarts exactly the services whose effective configuration changed (an invalid `.env` changes nothing),
/// a migration change re-runs migrations, a seed change makes the reset template stale (its key is a hash of the
/// seed files, so the next reset sees it).
public final class HotReloader: @unchecked Sendable {
    let engine: Engine
    let environment: [String: String]
    private let queue = DispatchQueue(label: "sagedev.watch")
    /// Reload work runs one batch at a time, off the watch queue, so events keep being read meanwhile.
    private let work = DispatchQueue(label: "sagedev.reload")
    private var watcher: RecursiveWatcher?
    private var source: DispatchSourceRead?
    private var debouncer: Debouncer
    private var timer: DispatchWorkItem?
    private var classifier: ChangeClassifier
    private var firstChangeAt: UInt64?
    /// Directories whose changes are ours (an install command is running in them), not the developer's.
    private var suppressed: Set<String> = []
    public private(set) var limitMessage: String?

    public init(engine: Engine, environment: [String: String]) {
        self.engine = engine; self.environment = environment
        let c = engine.config
        debouncer = Debouncer(quietPeriodMilliseconds: c.watchDebounceMilliseconds)
        classifier = ChangeClassifier(layout: WatchLayout(config: c))
    }

    /// Starts watching. Failure to watch (e.g. the inotify limit) is reported, never fatal to the stack.
    public func start() {
        let c = engine.config
        do {
            let w = try RecursiveWatcher(ignore: IgnoreRules(c.watchIgnore), ignoreBase: c.projectDirectory)
            let missing = try w.watch(WatchLayout(config: c))
            for m in missing { engine.logs.appendLine("daemon", "watch: \(m) does not exist yet; it is not watched") }
            if let r = w.watchLimitReport { report(r.error.message) }
            let src = DispatchSource.makeReadSource(fileDescriptor: w.fileDescriptor, queue: queue)
            src.setEventHandler { [weak self] in self?.readable() }
            // The descriptor is closed only once Dispatch has let go of it: closed earlier, its number is reused
            // (by the next pipe) while the event loop still holds it, and the daemon crashes in
            // _dispatch_event_loop_drain.
            src.setCancelHandler { w.close() }
            src.resume()
            watcher = w; source = src
            engine.logs.appendLine("daemon", "watch: \(w.watchCount) directories watched, \(c.watchDebounceMilliseconds) ms quiet period")
        } catch {
            report("\(error)")
        }
    }

    public func stop() {
        queue.sync {
            timer?.cancel(); timer = nil
            if let source { source.cancel() } else { watcher?.close() }
            source = nil; watcher = nil
        }
    }

    public var watchCount: Int { watcher?.watchCount ?? 0 }

    private func report(_ message: String) {
        limitMessage = message
        engine.logs.appendLine("daemon", "watch: \(message)")
    }

    private func readable() {
        guard let w = watcher else { return }
        let changes: [ChangedPath]
        do { changes = try w.drain() } catch { report("\(error)"); return }
        if let r = w.watchLimitReport, limitMessage == nil { report(r.error.message) }
        guard !changes.isEmpty else { return }
        let now = monotonicNanoseconds()
        if firstChangeAt == nil { firstChangeAt = now }
        debouncer.add(changes, at: now)
        arm()
    }

    /// Fires once the batch has been quiet for the debounce period.
    private func arm() {
        timer?.cancel()
        guard let ms = debouncer.millisecondsUntilDue(at: monotonicNanoseconds()) else { return }
        let item = DispatchWorkItem { [weak self] in self?.due() }
        timer = item
        queue.asyncAfter(deadline: .now() + .milliseconds(Int(ms)), execute: item)
    }

    private func due() {
        guard var batch = debouncer.flush(at: monotonicNanoseconds()) else { arm(); return }
        if !suppressed.isEmpty {
            batch = batch.filter { c in !suppressed.contains { WatchLayout.isSameOrInside(c.path, $0) } }
            guard !batch.isEmpty else { firstChangeAt = nil; return }
        }
        let changedAt = firstChangeAt ?? monotonicNanoseconds()
        firstChangeAt = nil
        let actions = classifier.classify(batch)
        guard !actions.isEmpty else { return }
        let count = batch.count
        work.async { self.carryOut(actions, batchSize: count, changedAt: changedAt) }
    }

    private func relative(_ path: String) -> String {
        let root = engine.config.projectDirectory + "/"
        return path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
    }

    private func carryOut(_ actions: [WatchAction], batchSize: Int, changedAt: UInt64) {
        let logs = engine.logs
        logs.appendLine("daemon", "watch: \(batchSize) change\(batchSize == 1 ? "" : "s") → \(actions.count) action\(actions.count == 1 ? "" : "s"), \(Int(millisecondsSince(changedAt))) ms after the first")
        for action in actions {
            switch action {
            case .envChanged:
                envChanged(changedAt: changedAt)
            case .sourceChanged(let s, let file):
                guard let app = engine.config.app(s) else { continue }
                logs.appendLine(s.rawValue, "sagedev: \(relative(file)) changed; \(app.reload == .self ? "the dev server reloads itself" : "restarting")")
                if app.reload == .self {
                    engine.reloadTriggered(s, file: relative(file), changedAt: changedAt)
                } else {
                    engine.restartForReload(s, file: relative(file), action: "restart", changedAt: changedAt)
                }
            case .manifestChanged(let s, let file):
                logs.appendLine(s.rawValue, "sagedev: \(relative(file)) changed; installing dependencies, then restarting")
                // What the install writes (lockfiles, caches) must not trigger another install or reload.
                let dir = engine.config.app(s).flatMap { WatchLayout.resolve($0.directory, against: engine.config.projectDirectory) }
                if let dir { _ = queue.sync { suppressed.insert(dir) } }
                defer { dropOwnChanges(under: dir) }
                var failure: String?
                do {
                    let what = try engine.runtime.installDependencies(s, config: engine.config, deadline: .after(seconds: 600))
                    logs.appendLine(s.rawValue, "sagedev: \(what)")
                } catch {
                    logs.appendLine(s.rawValue, "sagedev: \(error)")
                    failure = "\(error)"
                }
                engine.installFinished(s, file: relative(file), changedAt: changedAt, failure: failure)
            case .migrationsChanged(let file):
                engine.rerunJob(.database, reason: "\(relative(file)) changed; applying migrations (the reset template is now stale)")
            case .seedsChanged(let file):
                logs.appendLine("daemon", "watch: \(relative(file)) changed; the reset template is stale and is rebuilt on the next reset")
            }
        }
    }

    /// Discards pending changes under `directory`: they were made by our own job, not by the developer.
    private func dropOwnChanges(under directory: String?) {
        guard let directory else { return }
        queue.sync {
            suppressed.remove(directory)
            if let w = watcher, let more = try? w.drain(), !more.isEmpty { debouncer.add(more, at: monotonicNanoseconds()) }
            guard let pending = debouncer.flushNow() else { return }
            let keep = pending.filter { !WatchLayout.isSameOrInside($0.path, directory) }
            if !keep.isEmpty { debouncer.add(keep, at: monotonicNanoseconds()); arm() }
            if keep.count != pending.count {
                engine.logs.appendLine("daemon", "watch: ignored \(pending.count - keep.count) change(s) made by the install command")
            }
        }
    }

    /// Re-reads and revalidates `.env`; on success restarts only what changed, on failure leaves the stack alone.
    private func envChanged(changedAt: UInt64) {
        let old = engine.config
        let report = ConfigLoader.check(projectDirectory: old.projectDirectory, environment: environment, placement: old.placement)
        guard let new = report.config, report.errors.isEmpty else {
            let problems = report.errors.map(\.description).joined(separator: "; ")
            engine.logs.appendLine("daemon", "watch: .env is invalid, the running stack is left untouched: \(problems)")
            engine.reloadFailed(.backend, file: ".env", action: "config", reason: "invalid .env: \(problems)")
            return
        }
        let affected = old.servicesAffected(by: new)
        // A service taken out of SAGEDEV_SERVICES stops while the old configuration still knows it.
        let removed = old.services.serviceIDs.filter { !new.services.contains($0) }
        if !removed.isEmpty {
            engine.logs.appendLine("daemon", "watch: .env no longer declares \(removed.map(\.rawValue).joined(separator: ", ")); stopping it")
            engine.stop(removed)
        }
        engine.logs.appendLine("daemon", "watch: .env changed; \(affected.isEmpty ? "no service is affected" : "restarting \(affected.map(\.rawValue).joined(separator: ", "))")")
        guard !affected.isEmpty else { engine.updateConfig(new); return }
        engine.updateConfig(new)
        queue.sync { classifier = ChangeClassifier(layout: WatchLayout(config: new)) }
        do { try engine.runtime.prepare(new) } catch {
            engine.logs.appendLine("daemon", "watch: applying the new .env failed: \(error)")
            return
        }
        // Dependents restart with what they depend on, in order.
        for s in affected { engine.restartForReload(s, file: ".env", action: "config", changedAt: changedAt) }
    }
}
