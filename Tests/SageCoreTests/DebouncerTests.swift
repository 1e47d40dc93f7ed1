import Testing
@testable import SageCore

@Suite struct DebouncerTests {
    static let ms: UInt64 = 1_000_000
    let t0: UInt64 = 1_000_000_000_000  // an arbitrary monotonic-clock origin

    @Test func aSingleChangeIsDueAfterTheQuietPeriod() {
        var d = Debouncer()
        #expect(d.quietPeriodNanoseconds == 50 * Self.ms, "the default quiet period is 50 ms")
        #expect(d.flush(at: t0) == nil)
        #expect(d.dueAt == nil)
        d.add(ChangedPath("/p/a.js", .modified), at: t0)
        #expect(d.dueAt == t0 + 50 * Self.ms)
        #expect(d.flush(at: t0 + 49 * Self.ms) == nil)
        #expect(d.pendingCount == 1)
        #expect(d.flush(at: t0 + 50 * Self.ms) == [ChangedPath("/p/a.js", .modified)])
        #expect(d.isEmpty)
        #expect(d.flush(at: t0 + 500 * Self.ms) == nil, "a batch is handed out once")
    }

    @Test func aStormBecomesOneBatchOnceItGoesQuiet() {
        var d = Debouncer()
        var batches = [[ChangedPath]]()
        // 1,000 saves, one every 10 ms: never quiet for 50 ms until the end.
        for i in 0..<1_000 {
            let now = t0 + UInt64(i) * 10 * Self.ms
            if let b = d.flush(at: now) { batches.append(b) }
            d.add(ChangedPath("/p/f\(i % 7).js", .modified), at: now)
        }
        let last = t0 + 999 * 10 * Self.ms
        #expect(d.flush(at: last + 49 * Self.ms) == nil)
        if let b = d.flush(at: last + 50 * Self.ms) { batches.append(b) }
        #expect(batches.count == 1)
        #expect(batches.first?.map(\.path) == (0..<7).map { "/p/f\($0).js" }, "one entry per path, in first-seen order")
    }

    @Test func theQuietPeriodIsConfigurable() {
        var d = Debouncer(quietPeriodMilliseconds: 300)
        d.add(ChangedPath("/p/a", .created), at: t0)
        #expect(d.flush(at: t0 + 299 * Self.ms) == nil)
        #expect(d.flush(at: t0 + 300 * Self.ms)?.count == 1)

        var zero = Debouncer(quietPeriodMilliseconds: 0)
        zero.add(ChangedPath("/p/a", .created), at: t0)
        #expect(zero.flush(at: t0)?.count == 1)
    }

    @Test func kindsMergePerPath() {
        var d = Debouncer()
        d.add([ChangedPath("/p/new", .created), ChangedPath("/p/new", .modified)], at: t0)       // created
        d.add([ChangedPath("/p/tmp", .created), ChangedPath("/p/tmp", .removed)], at: t0)        // cancels out
        d.add([ChangedPath("/p/swap", .removed), ChangedPath("/p/swap", .created)], at: t0)      // replaced
        d.add([ChangedPath("/p/gone", .modified), ChangedPath("/p/gone", .removed)], at: t0)     // removed
        d.add([ChangedPath("/p/x", .modified), ChangedPath("/p/x", .modified)], at: t0)          // modified
        let batch = d.flush(at: t0 + 50 * Self.ms)
        #expect(batch == [
            ChangedPath("/p/new", .created), ChangedPath("/p/swap", .modified),
            ChangedPath("/p/gone", .removed), ChangedPath("/p/x", .modified),
        ])
    }

    @Test func aPathThatCameBackKeepsItsFirstPosition() {
        var d = Debouncer()
        d.add([ChangedPath("/p/a", .created), ChangedPath("/p/b", .modified), ChangedPath("/p/a", .removed)], at: t0)
        d.add(ChangedPath("/p/a", .created), at: t0 + Self.ms)
        #expect(d.flush(at: t0 + 51 * Self.ms) == [ChangedPath("/p/a", .created), ChangedPath("/p/b", .modified)])
    }

    @Test func aBatchThatCancelsOutEntirelyYieldsNothing() {
        var d = Debouncer(maximumDelayMilliseconds: 100)
        d.add([ChangedPath("/p/4913", .created), ChangedPath("/p/4913", .removed)], at: t0)
        #expect(d.isEmpty)
        #expect(d.dueAt == nil)
        #expect(d.flush(at: t0 + 1_000 * Self.ms) == nil)
        // A later change starts a fresh batch: its maximum delay counts from now, not from the cancelled one.
        d.add(ChangedPath("/p/a", .modified), at: t0 + 1_000 * Self.ms)
        #expect(d.dueAt == t0 + 1_050 * Self.ms)
    }

    @Test func theMaximumDelayCapsAnEndlessStorm() {
        var d = Debouncer(quietPeriodMilliseconds: 50, maximumDelayMilliseconds: 200)
        var flushedAt = [UInt64]()
        for i in 0..<100 {
            let now = t0 + UInt64(i) * 10 * Self.ms
            if d.flush(at: now) != nil { flushedAt.append(now - t0) }
            d.add(ChangedPath("/p/log", .modified), at: now)
        }
        #expect(flushedAt == [200, 400, 600, 800].map { $0 * Self.ms })

        var uncapped = Debouncer(quietPeriodMilliseconds: 50)
        for i in 0..<100 {
            let now = t0 + UInt64(i) * 10 * Self.ms
            #expect(uncapped.flush(at: now) == nil)
            uncapped.add(ChangedPath("/p/log", .modified), at: now)
        }
    }

    @Test func timeUntilDueRoundsUpForPoll() {
        var d = Debouncer()
        #expect(d.millisecondsUntilDue(at: t0) == nil)
        d.add(ChangedPath("/p/a", .modified), at: t0)
        #expect(d.millisecondsUntilDue(at: t0) == 50)
        #expect(d.millisecondsUntilDue(at: t0 + 49 * Self.ms + 1) == 1, "never 0 before the deadline, so poll cannot spin")
        #expect(d.millisecondsUntilDue(at: t0 + 50 * Self.ms) == 0)
        #expect(d.millisecondsUntilDue(at: t0 + 80 * Self.ms) == 0)
    }

    @Test func aLateChangeExtendsTheBatch() {
        var d = Debouncer()
        d.add(ChangedPath("/p/a", .modified), at: t0)
        d.add(ChangedPath("/p/b", .modified), at: t0 + 40 * Self.ms)
        #expect(d.flush(at: t0 + 60 * Self.ms) == nil)
        #expect(d.flush(at: t0 + 90 * Self.ms)?.count == 2)
    }

    @Test func flushNowHandsOutWhatIsPending() {
        var d = Debouncer()
        #expect(d.flushNow() == nil)
        d.add(ChangedPath("/p/a", .modified), at: t0)
        #expect(d.flushNow() == [ChangedPath("/p/a", .modified)])
        #expect(d.isEmpty)
    }

    @Test func addingNothingChangesNothing() {
        var d = Debouncer()
        d.add([], at: t0)
        #expect(d.isEmpty)
        #expect(d.dueAt == nil)
    }
}
