import Foundation
import SageSystem

/// A process recorded with its start time, so that a reused pid is never taken for it.
public struct ProcessRef: Codable, Sendable, Equatable {
    public var pid: Int32
    public var startTime: UInt64?
    public init(pid: Int32, startTime: UInt64?) { self.pid = pid; self.startTime = startTime }
    /// This process.
    public static func current() -> ProcessRef {
        let pid = ProcessIdentity.pid
        return ProcessRef(pid: pid, startTime: ProcFS.startTime(pid: pid))
    }
    public var isAlive: Bool { ProcFS.isAlive(pid: pid, startTime: startTime) }
}

/// One checkout's entry in the per-user registry: where it is, the slot it was given and the ports that follow from
/// it, its compose project name, and the processes that hold the slot.
public struct InstanceRecord: Codable, Sendable, Equatable {
    public var directory: String
    /// The compose project name of this instance (the configured name, or that name with a suffix).
    public var project: String
    /// The configured name (SAGEDEV_PROJECT or the directory's name) it was derived from.
    public var baseProject: String
    public var slot: Int
    public var stride: Int
    /// Service → host port, as placed.
    public var ports: [String: Int]
    public var runtime: String?
    /// The daemon serving the instance (it may have died since; see `InstanceStatus`).
    public var daemon: ProcessRef?
    /// An `up` that claimed the slot and is starting the daemon.
    public var claimant: ProcessRef?
    /// Seconds since 1970 of the last claim.
    public var updatedAt: Double

    public init(directory: String, project: String, baseProject: String, slot: Int, stride: Int, ports: [String: Int],
                runtime: String? = nil, daemon: ProcessRef? = nil, claimant: ProcessRef? = nil, updatedAt: Double = 0) {
        self.directory = directory; self.project = project; self.baseProject = baseProject; self.slot = slot
        self.stride = stride; self.ports = ports; self.runtime = runtime; self.daemon = daemon; self.claimant = claimant
        self.updatedAt = updatedAt
    }

    /// What the slot choice and `sagedev instances` make of an entry.
    public enum State: String, Sendable, Equatable, Codable {
        /// Its daemon runs.
        case running
        /// An `up` claimed the slot and is starting the daemon.
        case starting
        /// The daemon is gone but something still listens on its ports (services a killed daemon left, or containers).
        case orphaned
        /// Nothing of it runs: its slot is free for any checkout (and remembered for this one).
        case stopped
    }

    /// `portHeld` tells whether anything listens on a port (the OS read, kept outside so the rule stays testable).
    public func state(portHeld: (Int) -> Bool) -> State {
        if daemon?.isAlive == true { return .running }
        if claimant?.isAlive == true { return .starting }
        if ports.values.contains(where: portHeld) { return .orphaned }
        return .stopped
    }
}

/// The per-user list of sagedev instances, as stored in `instances.json`.
public struct InstanceRegistry: Codable, Sendable, Equatable {
    public var version: Int = 1
    public var instances: [InstanceRecord] = []
    public init(instances: [InstanceRecord] = []) { self.instances = instances }

    public func record(for directory: String) -> InstanceRecord? { instances.first { $0.directory == directory } }

    public mutating func upsert(_ r: InstanceRecord) {
        if let i = instances.firstIndex(where: { $0.directory == r.directory }) { instances[i] = r } else { instances.append(r) }
        instances.sort { $0.directory < $1.directory }
    }
}

/// Where the registry lives: `$XDG_STATE_HOME/sagedev/instances.json`, by default `~/.local/state/sagedev/`. Every
/// change is a read-modify-write under an exclusive lock on `instances.lock` beside it, and the file is replaced by
/// rename, so a reader never sees half a file and two racing `up`s never take the same slot.
public struct InstanceStore: Sendable, Equatable {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    public var file: String { directory + "/instances.json" }
    public var lockFile: String { directory + "/instances.lock" }

    /// The store for the user running sagedev. XDG_STATE_HOME counts only when absolute (as the XDG spec says).
    public static func forUser(environment: [String: String]) -> InstanceStore {
        if let x = environment["XDG_STATE_HOME"], x.hasPrefix("/") { return InstanceStore(directory: trimmed(x) + "/sagedev") }
        let home = environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? UserAccount.current().map(\.home) ?? "/tmp"
        return InstanceStore(directory: trimmed(home) + "/.local/state/sagedev")
    }

    private static func trimmed(_ p: String) -> String {
        var p = p
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p == "/" ? "" : p
    }

    /// The registry as last written (empty when there is none yet). A file that does not parse is set aside as
    /// `instances.json.bad` by the next `update`, and reads as empty.
    public func read() -> InstanceRegistry {
        guard let bytes = FileDescriptor.readFile(file), !bytes.isEmpty else { return InstanceRegistry() }
        return (try? JSONDecoder().decode(InstanceRegistry.self, from: Data(bytes))) ?? InstanceRegistry()
    }

    /// Reads, lets `body` change the registry, and writes it back, all under the lock (waited for up to 10 s).
    /// Entries whose directory no longer exists are dropped on the way.
    public func update<T>(_ body: (inout InstanceRegistry) throws -> T) throws -> T {
        try FileDescriptor.makeDirectories(directory, mode: 0o700)
        let lock = try FileLock.acquire(path: lockFile, deadline: .after(seconds: 10))
        defer { lock.release() }
        var registry = InstanceRegistry()
        if let bytes = FileDescriptor.readFile(file), !bytes.isEmpty {
            if let r = try? JSONDecoder().decode(InstanceRegistry.self, from: Data(bytes)) {
                registry = r
            } else {
                _ = FileDescriptor.rename(file, to: file + ".bad")
            }
        }
        let before = registry
        registry.instances.removeAll { !FileDescriptor.isDirectory($0.directory) }
        let result = try body(&registry)
        if registry != before || !FileDescriptor.exists(file) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try FileDescriptor.writeFileAtomically(file, Array(try encoder.encode(registry)) + [10], mode: 0o600)
        }
        return result
    }
}
