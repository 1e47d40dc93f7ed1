import Testing
import SageFuzz
@testable import SageWire

@Suite struct RESPFuzzTests {
    /// Random and mutated frames (the bench's fuzzer, shorter): no crash, no broken rule, and feeding in two chunks
    /// always agrees with feeding whole.
    @Test(arguments: [UInt64(0x5A6E_DE7), 0xC0FFEE])
    func randomAndMutatedFramesNeverCrashAndAgreeAcrossSplits(seed: UInt64) {
        let stats = RESPFuzz.run(iterations: 25_000, seed: seed)
        #expect(stats.bugCount == 0, "seed \(seed): \(stats.bugCount) bugs, first: \(stats.bugs.joined(separator: "\n"))")
        // The corpus must exercise all three paths, or the fuzzer proves little.
        let floor = stats.iterations / 100
        #expect(stats.decoded > floor && stats.rejected > floor && stats.incomplete > floor,
                "decoded \(stats.decoded) failed \(stats.rejected) incomplete \(stats.incomplete)")
    }

    @Test func generatedValuesRoundTripAtEverySplitOfTheirEncoding() throws {
        var r = SeededRandom(seed: 42)
        for _ in 0..<2_000 {
            let v = RESPFuzz.value(&r)
            let wire = RESPEncoder.encode(v)
            #expect(RESPFuzz.parseWhole(wire, .standard) == .value(v, consumed: wire.count))
            for split in stride(from: 0, through: wire.count, by: max(1, wire.count / 16)) {
                #expect(RESPFuzz.parseChunked(wire, .standard, split: split) == .value(v, consumed: wire.count))
            }
        }
    }
}
