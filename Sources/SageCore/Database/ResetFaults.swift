import SageSystem

/// A test seam, read only by the daemon from its own environment: `SAGEDEV_FAULT_RESET_STEP=<step>` kills the
/// daemon with SIGKILL right after that step of a reset or restore swap (`take-copy`, `block-connections`, `swap`,
/// `flush-cache`, `drop-old`), and `<step>:postgres` kills postgres (the postmaster and its backends) there instead. The tests use it to check that
/// the app database always names the old or the new database and that the next daemon cleans up.
/// `SAGEDEV_FAULT_FREE_BYTES=<n>` replaces the free disk space reading that decides whether a ready copy fits.
struct ResetFaults: Sendable {
    static let steps = ["take-copy", "block-connections", "swap", "flush-cache", "drop-old"]
    enum Target: Sendable { case daemon, postgres }

    let step: String?
    let target: Target
    let freeBytes: Int?

    init(environment: [String: String]) {
        let v = environment["SAGEDEV_FAULT_RESET_STEP"] ?? ""
        let parts = v.split(separator: ":").map(String.init)
        step = parts.first.flatMap { ResetFaults.steps.contains($0) ? $0 : nil }
        target = parts.count > 1 && parts[1] == "postgres" ? .postgres : .daemon
        freeBytes = environment["SAGEDEV_FAULT_FREE_BYTES"].flatMap { Int($0) }
    }

    /// Called after each step; kills when it is the chosen one.
    func after(_ name: String, logs: LogStore, postgresPid: () -> Int32?) {
        guard name == step else { return }
        switch target {
        case .daemon:
            logs.appendLine("database", "SAGEDEV_FAULT_RESET_STEP=\(name): killing the daemon")
            Signals.send(Signals.kill, toProcess: ProcessIdentity.pid)
        case .postgres:
            logs.appendLine("database", "SAGEDEV_FAULT_RESET_STEP=\(name):postgres: killing postgres")
            // The postmaster and every backend at once, as in a crash of the machine: each backend is a session of
            // its own, and one left alone would carry on with the next statement before it noticed the postmaster
            // was gone.
            if let pid = postgresPid() {
                let children = ProcFS.allPids().filter { ProcFS.parentPid(pid: $0) == pid }
                Signals.send(Signals.kill, toProcess: pid)
                for child in children { Signals.send(Signals.kill, toProcess: child) }
            }
        }
    }
}
