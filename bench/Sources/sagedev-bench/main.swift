import Glibc
import SageCore

// Benchmarks and fuzzers that do not belong in the test suite (the tests never depend on them).
let args = Array(CommandLine.arguments.dropFirst())
func int(_ i: Int, _ d: Int) -> Int { args.count > i ? Int(args[i]) ?? d : d }

switch args.first {
case "fuzz-postgres":
    fuzzPostgresDecoder(iterations: int(1, 2_000_000), seed: UInt64(int(2, 1)))
case "fuzz-resp":
    fuzzRESPParser(iterations: int(1, 2_000_000), seed: UInt64(int(2, 1)))
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
    exit(64)
}
