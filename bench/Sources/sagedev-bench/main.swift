import SageCore
import SageFuzz
import SageSystem

// Benchmarks and fuzzers that do not belong in the test suite (the tests run the same fuzzers, shorter).
let args = Array(CommandLine.arguments.dropFirst())
func int(_ i: Int, _ d: Int) -> Int { args.count > i ? Int(args[i]) ?? d : d }

/// Runs a fuzzer, prints each bug it found, and returns its stats with the seconds it took.
func fuzz(_ name: String, _ run: () -> FuzzStats) -> (FuzzStats, Double) {
    let start = monotonicNanoseconds()
    let stats = run()
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    for bug in stats.bugs { print("FAIL \(name) \(bug)") }
    if stats.bugCount > stats.bugs.count { print("FAIL \(name): \(stats.bugCount - stats.bugs.count) more") }
    return (stats, seconds)
}

func format3(_ x: Double) -> String {
    let ms = Int((x * 1000).rounded())
    let frac = ms % 1000
    return "\(ms / 1000).\(frac < 10 ? "00" : frac < 100 ? "0" : "")\(frac)"
}

switch args.first {
case "fuzz-postgres":
    let (iterations, seed) = (int(1, 2_000_000), UInt64(int(2, 1)))
    let (s, seconds) = fuzz("fuzz-postgres") { PostgresFuzz.run(iterations: iterations, seed: seed) }
    print("fuzz postgres: \(s.iterations) streams (seed \(seed)) in \(format3(seconds)) s: \(s.decoded) messages decoded, \(s.rejected) streams rejected, \(s.accepted) accepted or short, largest buffer \(s.largestBuffer) bytes, \(s.bugCount == 0 ? "no crash" : "\(s.bugCount) bugs")")
case "fuzz-resp":
    let (iterations, seed) = (int(1, 2_000_000), UInt64(int(2, 1)))
    let (s, seconds) = fuzz("fuzz-resp") { RESPFuzz.run(iterations: iterations, seed: seed) }
    let rate = seconds > 0 ? Double(s.iterations) / seconds : 0
    print("fuzz-resp: \(s.iterations) frames (\(s.bytes) bytes), seed \(seed): \(s.decoded) decoded, \(s.rejected) rejected, \(s.incomplete) incomplete, \(s.bugCount) bugs, \(Int(rate)) frames/s")
case "probe-cost" where args.count >= 7:
    // probe-cost KIND HOST PORT USER PASSWORD DATABASE [COUNT]
    probeCost(kind: args[1], host: args[2], port: Int(args[3]) ?? 0, user: args[4], password: args[5], database: args[6], count: int(7, 1000))
case "spawn-cost" where args.count >= 3:
    // spawn-cost COUNT ARGV...
    spawnCost(Array(args.dropFirst(2)), count: int(1, 100))
default:
    print("""
    usage: sagedev-bench fuzz-postgres [ITERATIONS] [SEED]
           sagedev-bench fuzz-resp [ITERATIONS] [SEED]
           sagedev-bench probe-cost postgres|valkey HOST PORT USER PASSWORD DATABASE [COUNT]
           sagedev-bench spawn-cost COUNT ARGV...
    """)
    ProcessIdentity.exit(64)
}
