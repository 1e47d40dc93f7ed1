import SageCore
import SageSystem

/// CPU per healthy-state probe, measured in this process with getrusage, against a spawned client's CPU.
func probeCost(kind: String, host: String, port: Int, user: String, password: String, database: String, count: Int) {
    let probe: any Probe
    switch kind {
    case "postgres": probe = PostgresProbe(host: host, port: port, user: user, password: password, database: database)
    case "valkey": probe = ValkeyProbe(host: host, port: port, password: password.isEmpty ? nil : password)
    default: print("probe-cost: kind must be postgres or valkey"); ProcessIdentity.exit(64)
    }
    // The first probe fills the SCRAM salted-password cache, as a daemon's first probe does.
    guard probe.check(deadline: .after(seconds: 5)).isReady else { print("probe-cost: \(probe.target) is not ready"); ProcessIdentity.exit(1) }
    let (cpu0, wall0) = (ResourceUsage.cpuSeconds(), monotonicNanoseconds())
    for _ in 0..<count {
        guard probe.check(deadline: .after(seconds: 5)).isReady else { print("probe-cost: a probe failed"); ProcessIdentity.exit(1) }
    }
    let cpu = (ResourceUsage.cpuSeconds() - cpu0) / Double(count) * 1e6
    let wall = Double(monotonicNanoseconds() - wall0) / Double(count) / 1e3
    print("probe-cost \(kind) cpu_us=\(String(format: "%.1f", cpu)) wall_us=\(String(format: "%.1f", wall)) n=\(count)")
}

/// CPU of spawning a client command `count` times (children's rusage), per run.
func spawnCost(_ argv: [String], count: Int) {
    let (cpu0, wall0) = (ResourceUsage.cpuSeconds(children: true), monotonicNanoseconds())
    for _ in 0..<count {
        guard let r = try? Subprocess.run(argv, deadline: .after(seconds: 10)), r.status.isSuccess else {
            print("spawn-cost: \(argv[0]) failed"); ProcessIdentity.exit(1)
        }
    }
    let cpu = (ResourceUsage.cpuSeconds(children: true) - cpu0) / Double(count) * 1e6
    let wall = Double(monotonicNanoseconds() - wall0) / Double(count) / 1e3
    print("spawn-cost \(argv[0].split(separator: "/").last!) cpu_us=\(String(format: "%.1f", cpu)) wall_us=\(String(format: "%.1f", wall)) n=\(count)")
}
