import Testing
import Glibc
import Foundation
import SageSystem
@testable import SageCore

/// The watcher against real inotify on temporary trees. Nothing here sleeps: every wait is a poll(2) on the
/// watcher's fd with a deadline, and "nothing else arrived" is shown with a sentinel file written afterwards
/// (inotify delivers one instance's events in order).
///
/// The watch-limit tests use the watcher's `maxWatches` budget rather than lowering
/// fs.inotify.max_user_watches: that sysctl is per user and machine-wide, so lowering it would break every other
/// watcher (and test) running at the same time. The budget goes through the same reporting path as ENOSPC.
@Suite struct WatcherTests {
    // MARK: support

    static func write(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError.fromErrno("create", path) }
        var bytes = Array(text.utf8)
        let ok = FileDescriptor.writeAll(fd, &bytes)
        close(fd)
        guard ok else { throw SystemError.fromErrno("write", path) }
    }

    static func mkdirs(_ path: String) throws { try FileDescriptor.makeDirectories(path) }

    /// Reads changes until `done` holds for everything seen so far, or the deadline passes.
    static func collect(_ watcher: RecursiveWatcher, seconds: Double = 20,
                        until done: ([ChangedPath]) -> Bool) throws -> [ChangedPath] {
        let deadline = Deadline.after(seconds: seconds)
        var seen = [ChangedPath]()
        while !done(seen) {
            let more = try watcher.next(deadline: deadline)
            if more.isEmpty { break }  // deadline
            seen += more
        }
        return seen
    }

    /// The next debounced batch: reads whenever the fd is readable, hands the batch out once quiet.
    static func nextBatch(_ watcher: RecursiveWatcher, _ debouncer: inout Debouncer, seconds: Double = 30) throws -> [ChangedPath]? {
        let deadline = Deadline.after(seconds: seconds)
        while true {
            let changes = try watcher.readEvents()
            if !changes.isEmpty { debouncer.add(changes, at: monotonicNanoseconds()) }
            if let batch = debouncer.flush(at: monotonicNanoseconds()) { return batch }
            if deadline.hasPassed { return nil }
            let wake = debouncer.dueAt.map { Deadline(nanoseconds: $0).earlier(deadline) } ?? deadline
            _ = try Inotify.pollReadable(watcher.fileDescriptor, until: wake)
        }
    }

    static func contains(_ changes: [ChangedPath], _ path: String) -> Bool { changes.contains { $0.path == path } }

    // MARK: tests

    @Test func anEditIsDetected() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        try Self.mkdirs(root + "/src")
        try Self.write(root + "/src/version.js", "module.exports = { VERSION: \"1.0.0\" };\n")
        let watcher = try RecursiveWatcher()
        try watcher.watchTree(root)
        #expect(watcher.watchCount == 2)

        try Self.write(root + "/src/version.js", "module.exports = { VERSION: \"2.0.0\" };\n")
        let seen = try Self.collect(watcher) { Self.contains($0, root + "/src/version.js") }
        #expect(seen.contains(ChangedPath(root + "/src/version.js", .modified)))

        // An editor's atomic save: write a temp file, rename it over the original.
        var debouncer = Debouncer()
        try Self.write(root + "/src/.version.js.swp", "module.exports = { VERSION: \"3.0.0\" };\n")
        #expect(rename(root + "/src/.version.js.swp", root + "/src/version.js") == 0)
        let batch = try Self.nextBatch(watcher, &debouncer)
        #expect(batch == [ChangedPath(root + "/src/version.js", .modified)],
                "the temp file comes and goes within the batch; the original counts as modified")

        #expect(unlink(root + "/src/version.js") == 0)
        let removed = try Self.collect(watcher) { Self.contains($0, root + "/src/version.js") }
        #expect(removed == [ChangedPath(root + "/src/version.js", .removed)])
    }

    @Test func newNestedDirectoriesAndTheirFilesAreSeen() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        let watcher = try RecursiveWatcher()
        try watcher.watchTree(root)
        #expect(watcher.watchCount == 1)

        // Written before the watcher reads a single event, so before any watch on a/, a/b or a/b/c exists.
        try Self.mkdirs(root + "/a/b/c")
        try Self.write(root + "/a/b/c/early.ts", "export {}\n")
        try Self.write(root + "/a/top.ts", "export {}\n")
        let first = try Self.collect(watcher) { Self.contains($0, root + "/a/b/c/early.ts") && Self.contains($0, root + "/a/top.ts") }
        #expect(first.contains(ChangedPath(root + "/a/b/c/early.ts", .created)))
        #expect(first.contains(ChangedPath(root + "/a", .created, isDirectory: true)))
        #expect(watcher.watchCount == 4)

        // The new directories are watched now: a later file is an ordinary event.
        try Self.write(root + "/a/b/c/late.ts", "export {}\n")
        let second = try Self.collect(watcher) { Self.contains($0, root + "/a/b/c/late.ts") }
        #expect(second.contains(ChangedPath(root + "/a/b/c/late.ts", .created)))

        // Removing the tree drops its watches.
        removeTree(root + "/a")
        let gone = try Self.collect(watcher) { Self.contains($0, root + "/a") }
        #expect(gone.contains(ChangedPath(root + "/a", .removed, isDirectory: true)))
        #expect(watcher.watchCount == 1)
        #expect(watcher.statistics.directories == 1)
    }

    @Test func movedDirectoriesAreFollowed() throws {
        let root = makeTempDirectory("sagedev-watch")
        let outside = makeTempDirectory("sagedev-watch-outside")
        defer { removeTree(root); removeTree(outside) }
        try Self.mkdirs(root + "/src/old")
        let watcher = try RecursiveWatcher()
        try watcher.watchTree(root)

        // Renamed inside the tree: events from it carry the new name.
        #expect(rename(root + "/src/old", root + "/src/new") == 0)
        _ = try Self.collect(watcher) { Self.contains($0, root + "/src/new") }
        try Self.write(root + "/src/new/x.js", "1\n")
        let inside = try Self.collect(watcher) { Self.contains($0, root + "/src/new/x.js") }
        #expect(!Self.contains(inside, root + "/src/old/x.js"))

        // Moved in from outside with files already in it.
        try Self.mkdirs(outside + "/pkg/lib")
        try Self.write(outside + "/pkg/lib/index.js", "1\n")
        #expect(rename(outside + "/pkg", root + "/pkg") == 0)
        let movedIn = try Self.collect(watcher) { Self.contains($0, root + "/pkg/lib/index.js") }
        #expect(movedIn.contains(ChangedPath(root + "/pkg/lib/index.js", .created)))

        // Moved out: no longer watched, and reported as removed.
        let before = watcher.watchCount
        #expect(rename(root + "/pkg", outside + "/pkg-back") == 0)
        let movedOut = try Self.collect(watcher) { Self.contains($0, root + "/pkg") }
        #expect(movedOut.contains(ChangedPath(root + "/pkg", .removed, isDirectory: true)))
        #expect(watcher.watchCount == before - 2)
        try Self.write(outside + "/pkg-back/lib/after.js", "1\n")
        try Self.write(root + "/sentinel", "1\n")
        let after = try Self.collect(watcher) { Self.contains($0, root + "/sentinel") }
        #expect(Set(after.map(\.path)) == [root + "/sentinel"])
    }

    @Test func ignoredDirectoriesProduceNothing() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        for dir in ["node_modules/react", ".git/objects", "dist", "build", ".sagedev/run", "src/node_modules/x", "logs", "src"] {
            try Self.mkdirs(root + "/" + dir)
        }
        let watcher = try RecursiveWatcher(ignore: IgnoreRules(["**/*.log", "logs"]), ignoreBase: root)
        try watcher.watchTree(root)
        #expect(watcher.watchCount == 2, "only the root and src: excluded directories get no watch")

        let ignored = ["node_modules/react/index.js", ".git/objects/ab", "dist/app.js", "build/out.o", ".sagedev/run/pid",
                       "src/node_modules/x/index.js", "logs/today", "src/debug.log", "server.log"]
        for file in ignored { try Self.write(root + "/" + file, "x\n") }
        try Self.mkdirs(root + "/src/dist/deeper")          // a new excluded directory
        try Self.write(root + "/src/dist/deeper/a.js", "x\n")
        try Self.mkdirs(root + "/node_modules/fresh")
        try Self.write(root + "/src/sentinel.js", "x\n")

        let seen = try Self.collect(watcher) { Self.contains($0, root + "/src/sentinel.js") }
        #expect(Set(seen.map(\.path)) == [root + "/src/sentinel.js"], "got \(seen)")
        #expect(watcher.watchCount == 2)
    }

    @Test func aNegationReachesIntoAnExcludedDirectory() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        try Self.mkdirs(root + "/build")
        let watcher = try RecursiveWatcher(ignore: IgnoreRules(["!build/keep.txt"]), ignoreBase: root)
        try watcher.watchTree(root)
        try Self.write(root + "/build/other.txt", "x\n")
        try Self.write(root + "/build/keep.txt", "x\n")
        let seen = try Self.collect(watcher) { Self.contains($0, root + "/build/keep.txt") }
        #expect(Set(seen.map(\.path)) == [root + "/build/keep.txt"])
    }

    @Test func tenThousandFilesAtOnceMakeOneBatch() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        try Self.mkdirs(root + "/src/generated")
        let watcher = try RecursiveWatcher()
        try watcher.watchTree(root)

        // All written before the watcher reads: ~30,000 events, more than fs.inotify.max_queued_events
        // (16,384 by default), so the kernel overflows and the watcher must rescan.
        var expected = Set<String>()
        for i in 0..<9_900 {
            let path = root + "/src/generated/file\(i).js"
            try Self.write(path, "export const n = \(i);\n")
            expected.insert(path)
        }
        for d in 0..<10 {  // and some in directories that appear meanwhile
            try Self.mkdirs(root + "/src/new\(d)")
            for i in 0..<10 {
                let path = root + "/src/new\(d)/f\(i).js"
                try Self.write(path, "\(i)\n")
                expected.insert(path)
            }
        }
        #expect(expected.count == 10_000)

        var debouncer = Debouncer()
        let batch = try #require(try Self.nextBatch(watcher, &debouncer))
        let files = Set(batch.filter { !$0.isDirectory }.map(\.path))
        let missing = expected.subtracting(files), unexpected = files.subtracting(expected)
        #expect(missing.isEmpty && unexpected.isEmpty,
                "missing \(missing.count) (\(missing.first ?? "-")), unexpected \(unexpected.count) (\(unexpected.first ?? "-"))")
        let distinctPaths = Set(batch.map(\.path)).count
        #expect(batch.count == distinctPaths, "one entry per path")
        if let queue = Inotify.maxQueuedEvents(), queue < 20_000 {
            #expect(watcher.statistics.overflows >= 1, "the kernel queue (\(queue)) must have overflowed")
        }
        #expect(watcher.watchCount == 13, "the root, src, src/generated and the ten new directories")

        let classifier = ChangeClassifier(layout: WatchLayout(backendDirectory: root, frontendDirectory: nil,
                                                              migrationsDirectory: nil, seedsDirectory: nil, envFile: nil))
        #expect(classifier.classify(batch).count == 1, "one action for the whole storm")

        // Nothing was left over for a second batch: the next one holds only a file written afterwards.
        try Self.write(root + "/sentinel.js", "x\n")
        let next = try #require(try Self.nextBatch(watcher, &debouncer))
        #expect(next == [ChangedPath(root + "/sentinel.js", .created)])
    }

    @Test func aConcurrentStormIsReportedCompletely() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        try Self.mkdirs(root + "/src")
        let watcher = try RecursiveWatcher()
        try watcher.watchTree(root)

        // The writer runs while the watcher reads. How many batches that makes depends on scheduling
        // (a writer stalled past the quiet period splits it), so this checks completeness, not the count.
        let writer = Locked<SystemError?>(nil)
        let done = Locked(false)
        let thread = Thread {
            do {
                for i in 0..<10_000 { try Self.write(root + "/src/c\(i % 100)-\(i).js", "\(i)\n") }
            } catch let e as SystemError { writer.withValue { $0 = e } } catch {}
            done.withValue { $0 = true }
        }
        thread.start()
        var debouncer = Debouncer()
        var seen = Set<String>()
        var batches = 0
        let deadline = Deadline.after(seconds: 60)
        while seen.count < 10_000 && !deadline.hasPassed {
            guard let batch = try Self.nextBatch(watcher, &debouncer, seconds: 30) else { break }
            batches += 1
            for c in batch where !c.isDirectory { seen.insert(c.path) }
        }
        #expect(waitUntil(.after(seconds: 30)) { done.current })
        #expect(writer.current == nil)
        #expect(seen.count == 10_000)
        #expect(batches >= 1)
    }

    @Test func anOverflowRescanFindsChangesTheKernelDropped() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        try Self.mkdirs(root + "/src")
        try Self.write(root + "/src/keep.js", "a\n")
        try Self.write(root + "/src/gone.js", "a\n")
        let watcher = try RecursiveWatcher()
        try watcher.watchTree(root)

        // Fill the queue past its limit, then change two files: their events are dropped by the kernel.
        let queue = Inotify.maxQueuedEvents() ?? 16_384
        for i in 0..<(queue / 2 + 100) { try Self.write(root + "/src/filler\(i)", "") }
        try Self.write(root + "/src/keep.js", "changed and longer\n")
        #expect(unlink(root + "/src/gone.js") == 0)

        let seen = try Self.collect(watcher) {
            $0.contains(ChangedPath(root + "/src/keep.js", .modified)) && $0.contains(ChangedPath(root + "/src/gone.js", .removed))
        }
        let keepModified = seen.contains(ChangedPath(root + "/src/keep.js", .modified))
        let goneRemoved = seen.contains(ChangedPath(root + "/src/gone.js", .removed))
        #expect(watcher.statistics.overflows == 1)
        #expect(keepModified, "keep.js was rewritten while the queue was full")
        #expect(goneRemoved, "gone.js was deleted while the queue was full")
    }

    @Test func watchLimitExhaustionSaysHowManyAreNeeded() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        for i in 0..<20 { try Self.mkdirs(root + "/d\(i)/sub") }
        try Self.mkdirs(root + "/node_modules/a/b/c")  // excluded: not counted
        let watcher = try RecursiveWatcher(maxWatches: 5)
        var thrown: SystemError?
        do { try watcher.watchTree(root) } catch let e as SystemError { thrown = e }
        let error = try #require(thrown)
        #expect(error.code == .tooLarge)
        #expect(error.errno == ENOSPC)
        #expect(error.message.contains("41 watches are needed"), "\(error.message)")
        #expect(error.message.contains("holds 5"), "\(error.message)")
        #expect(error.message.contains("sysctl fs.inotify.max_user_watches="), "\(error.message)")
        #expect(watcher.watchLimitReport?.needed == 41)
        #expect(watcher.watchLimitReport?.held == 5)
        #expect(watcher.watchCount == 5, "watches added before the limit stay")
    }

    @Test func runningOutLaterIsReportedWithoutLosingTheChange() throws {
        let root = makeTempDirectory("sagedev-watch")
        defer { removeTree(root) }
        try Self.mkdirs(root + "/src")
        let watcher = try RecursiveWatcher(maxWatches: 2)
        try watcher.watchTree(root)
        #expect(watcher.watchLimitReport == nil)

        try Self.mkdirs(root + "/src/feature/deep")
        try Self.write(root + "/src/feature/deep/a.js", "x\n")
        let seen = try Self.collect(watcher) { Self.contains($0, root + "/src/feature") }
        #expect(seen.contains(ChangedPath(root + "/src/feature", .created, isDirectory: true)))
        let report = try #require(watcher.watchLimitReport)
        #expect(report.needed == 4)
        #expect(report.held == 2)
        #expect(report.error.message.contains("sysctl fs.inotify.max_user_watches="))
    }

    @Test func theLimitMessageUsesTheRealSysctl() throws {
        let limit = try #require(Inotify.maxUserWatches())
        let error = Inotify.watchLimitError(path: "/p/apps/backend", needed: 12_345, held: 100)
        #expect(error.message.contains("fs.inotify.max_user_watches = \(limit)"), "\(error.message)")
        #expect(error.message.contains("12345 watches are needed"))
        #expect(error.message.contains("`sudo sysctl fs.inotify.max_user_watches=\(Inotify.suggestedWatchLimit(current: limit, needed: 12_345))`"))
        #expect(Inotify.suggestedWatchLimit(current: 8_192, needed: 100) == 524_288)
        #expect(Inotify.suggestedWatchLimit(current: 524_288, needed: 600_000) == 2_097_152)
    }

    @Test func aSingleFileIsWatchedThroughItsDirectory() throws {
        let project = makeTempDirectory("sagedev-watch")
        defer { removeTree(project) }
        try Self.write(project + "/.env", "BACKEND_PORT=3000\n")
        let watcher = try RecursiveWatcher()
        try watcher.watchFile(project + "/.env")
        #expect(watcher.watchCount == 1)

        try Self.write(project + "/README.md", "other files in the directory are not reported\n")
        try Self.write(project + "/.env.tmp", "BACKEND_PORT=3001\n")
        #expect(rename(project + "/.env.tmp", project + "/.env") == 0)
        let seen = try Self.collect(watcher) { Self.contains($0, project + "/.env") }
        #expect(seen == [ChangedPath(project + "/.env", .modified)])

        // Still watched after being replaced (the watch is on the directory, not the old inode).
        try Self.write(project + "/.env", "BACKEND_PORT=3002\n")
        let again = try Self.collect(watcher) { Self.contains($0, project + "/.env") }
        #expect(again.contains(ChangedPath(project + "/.env", .modified)))
    }

    @Test func aLayoutDrivesTheClassifierEndToEnd() throws {
        let project = makeTempDirectory("sagedev-watch")
        defer { removeTree(project) }
        for dir in ["apps/backend/src", "apps/backend/node_modules/x", "apps/frontend/public", "db/migrations", "db/seeds"] {
            try Self.mkdirs(project + "/" + dir)
        }
        try Self.write(project + "/apps/backend/package.json", "{}\n")
        try Self.write(project + "/apps/backend/src/version.js", "1\n")
        try Self.write(project + "/.env", "X=1\n")
        let layout = WatchLayout(backendDirectory: project + "/apps/backend", frontendDirectory: project + "/apps/frontend",
                                 migrationsDirectory: project + "/db/migrations", seedsDirectory: project + "/db/seeds",
                                 envFile: project + "/.env")
        let classifier = ChangeClassifier(layout: layout)
        let watcher = try RecursiveWatcher(ignoreBase: project)
        #expect(try watcher.watch(layout) == [])
        #expect(watcher.watchCount == 7, "backend, backend/src, frontend, frontend/public, migrations, seeds, the project directory (for .env); not node_modules")

        var debouncer = Debouncer()
        try Self.write(project + "/apps/backend/src/version.js", "2\n")
        #expect(classifier.classify(try #require(try Self.nextBatch(watcher, &debouncer)))
                == [.sourceChanged(.backend, file: project + "/apps/backend/src/version.js")])

        // `touch package.json`: only the timestamps change.
        #expect(utimensat(AT_FDCWD, project + "/apps/backend/package.json", nil, 0) == 0)
        #expect(classifier.classify(try #require(try Self.nextBatch(watcher, &debouncer)))
                == [.manifestChanged(.backend, file: project + "/apps/backend/package.json")])

        try Self.write(project + "/db/migrations/004_tags.sql", "CREATE TABLE tags (id int);\n")
        try Self.write(project + "/.env", "X=2\n")
        try Self.write(project + "/apps/backend/node_modules/x/index.js", "ignored\n")
        #expect(classifier.classify(try #require(try Self.nextBatch(watcher, &debouncer)))
                == [.envChanged, .migrationsChanged(file: project + "/db/migrations/004_tags.sql")])
    }

    @Test func decodingHandlesNamesPaddingAndTruncation() {
        // wd=3, IN_CREATE, cookie 0, len 16, "a.js" + NUL padding; then a truncated record.
        var bytes = [UInt8]()
        func le32(_ v: UInt32) { bytes += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
        le32(3); le32(UInt32(IN_CREATE)); le32(0); le32(16)
        bytes += Array("a.js".utf8) + [UInt8](repeating: 0, count: 12)
        le32(UInt32(bitPattern: -1)); le32(UInt32(IN_Q_OVERFLOW)); le32(0); le32(0)
        le32(4); le32(UInt32(IN_MODIFY)); le32(0); le32(32)  // claims a 32-byte name that is not there
        bytes += [0x62, 0]
        let events = bytes.withUnsafeBytes { Inotify.decode($0) }
        #expect(events == [
            InotifyEvent(watch: 3, mask: .create, name: "a.js"),
            InotifyEvent(watch: -1, mask: .queueOverflow),
        ])
        #expect(events[1].isOverflow)
    }
}
