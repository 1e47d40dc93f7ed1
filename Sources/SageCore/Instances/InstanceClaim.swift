import Foundation
import SageSystem
import SageWire

/// Where one checkout runs: its port slot and its compose project name. Applied to the configuration in one
/// place (`ConfigLoader.check(…, placement:)`), so the probes, the spawned environments, the compose file, `status`
/// and `env` all see the same ports.
public struct Placement: Sendable, Equatable, Codable {
    public var slot: Int
    public var stride: Int
    /// The compose project name of this instance; nil keeps the configured one.
    public var project: String?
    public init(slot: Int, stride: Int, project: String?) { self.slot = slot; self.stride = stride; self.project = project }

    /// The configured ports and name: what a checkout gets when nothing else runs.
    public static let configured = Placement(slot: 0, stride: 0, project: nil)
    public var offset: Int { slot * stride }

    /// The placement remembered for a checkout (its last claim), or the configured one.
    public static func remembered(directory: String, store: InstanceStore) -> Placement {
        guard let r = store.read().record(for: directory) else { return .configured }
        return Placement(slot: r.slot, stride: r.stride, project: r.project)
    }
}

/// Why no slot could be claimed.
public struct InstanceError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable { case portTaken = "port-conflict", registry }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }
}

/// What a checkout asks for when it claims a slot.
public struct ClaimRequest: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        /// `up`, before it starts the daemon: the claim holds the slot while this process lives.
        case starting(ProcessRef)
        /// The daemon itself, once it holds the project's lock.
        case daemon(ProcessRef)
    }
    public var directory: String
    public var baseProject: String
    public var ports: [SlotPort]
    public var mode: PortsMode
    public var stride: Int
    public var bindAddress: String
    public var runtime: String?
    public var role: Role
    /// Sessions of this checkout's own services still running (a killed daemon's), whose ports count as free.
    public var ownSessions: Set<Int32>

    public init(directory: String, baseProject: String, ports: [SlotPort], mode: PortsMode, stride: Int,
                bindAddress: String, runtime: String? = nil, role: Role, ownSessions: Set<Int32> = []) {
        self.directory = directory; self.baseProject = baseProject; self.ports = ports; self.mode = mode
        self.stride = stride; self.bindAddress = bindAddress; self.runtime = runtime; self.role = role
        self.ownSessions = ownSessions
    }
}

/// The outcome of a claim: the placement, and notes saying why lower slots were passed over.
public struct Claim: Sendable, Equatable {
    public var placement: Placement
    public var notes: [String]
    public var record: InstanceRecord
}

/// Claims a slot for a checkout under the registry's lock. The OS reads (who listens where, which processes are
/// alive) happen here; the choice itself is `SlotAllocator.decide`, and the compose name `InstanceNames.project`.
public enum InstanceClaims {
    public static func claim(_ request: ClaimRequest, store: InstanceStore, ports probe: PortProbe = .system) throws -> Claim {
        do {
            return try store.update { registry in try claim(request, in: &registry, probe: probe) }
        } catch let e as InstanceError {
            throw e
        } catch {
            throw InstanceError(.registry, "cannot update the instance registry \(store.file): \(error)")
        }
    }

    static func claim(_ request: ClaimRequest, in registry: inout InstanceRegistry, probe: PortProbe) throws -> Claim {
        // Who listens where is read only when an instance's daemon is gone.
        var listening: Set<Int>?
        func held(_ port: Int) -> Bool {
            if listening == nil { listening = probe.listeningPorts() }
            return listening!.contains(port)
        }
        var reserved: [Int: InstanceRecord] = [:]
        for i in registry.instances.indices where registry.instances[i].directory != request.directory {
            let r = registry.instances[i]
            switch r.state(portHeld: held) {
            case .running, .starting, .orphaned:
                for p in r.ports.values { reserved[p] = r }
            case .stopped:
                // Reclaimed: its slot is free for anyone; the entry stays so its checkout finds its slot again.
                registry.instances[i].daemon = nil
                registry.instances[i].claimant = nil
            }
        }
        let own = request.ownSessions
        // Under compose, this checkout's containers publish its ports through docker-proxy: a port this checkout
        // held before, still held by docker-proxy, is its own stack left by a daemon that died (the new one adopts it).
        let heldBefore = Set(registry.record(for: request.directory)?.ports.values.map { $0 } ?? [])
        let decision = SlotAllocator.decide(
            ports: request.ports, mode: request.mode, stride: request.stride,
            remembered: registry.record(for: request.directory).flatMap { $0.stride == request.stride ? $0.slot : nil }
        ) { port in
            if let r = reserved[port] {
                return .instance(directory: r.directory, description: "port \(port) is used by the sagedev instance in \(r.directory) (slot \(r.slot))")
            }
            guard let conflict = probe.conflict(request.bindAddress, port) else { return .free }
            let pids = conflict.owners.compactMap(\.pid)
            if !pids.isEmpty, !own.isEmpty, pids.allSatisfy({ ProcFS.sessionID(pid: $0).map(own.contains) == true }) { return .own }
            if !pids.isEmpty, heldBefore.contains(port), pids.allSatisfy({ ProcFS.commandName(pid: $0) == "docker-proxy" }) { return .own }
            return .stranger(description: conflict.description)
        }
        switch decision {
        case .refused(let message):
            throw InstanceError(.portTaken, message)
        case .placed(let slot, let notes):
            let previous = registry.record(for: request.directory)
            let project = InstanceNames.project(base: request.baseProject, directory: request.directory, registry: registry)
            var ports: [String: Int] = [:]
            for p in request.ports { ports[p.service] = p.port + slot * request.stride }
            var record = InstanceRecord(directory: request.directory, project: project, baseProject: request.baseProject,
                                        slot: slot, stride: request.stride, ports: ports, runtime: request.runtime ?? previous?.runtime,
                                        daemon: previous?.daemon, claimant: previous?.claimant, updatedAt: Date().timeIntervalSince1970)
            switch request.role {
            case .starting(let p): record.claimant = p
            case .daemon(let p): record.daemon = p; record.claimant = nil
            }
            registry.upsert(record)
            return Claim(placement: Placement(slot: slot, stride: request.stride, project: project), notes: notes, record: record)
        }
    }

    /// Claims a slot for the project that `config` (as configured, not yet placed) describes. Ports held by the
    /// project's own services (left by a daemon that died) count as free: the new daemon adopts them.
    public static func claim(for config: Config, paths: ProjectPaths, environment: [String: String],
                             role: ClaimRequest.Role, runtime: String? = nil) throws -> Claim {
        let own = Set(config.services.serviceIDs.compactMap { s -> Int32? in
            guard let r = PidRecord.read(paths.pidFile(s)), r.isAlive else { return nil }
            return ProcFS.sessionID(pid: r.pid)
        })
        let request = ClaimRequest(directory: paths.root, baseProject: config.projectName, ports: config.slotPorts,
                                   mode: config.portsMode, stride: config.portStride, bindAddress: config.bindAddress,
                                   runtime: runtime, role: role, ownSessions: own)
        return try claim(request, store: .forUser(environment: environment))
    }

    /// Records this process as the checkout's daemon (once it holds the project's lock), and the runtime it chose.
    public static func markDaemon(directory: String, runtime: String, store: InstanceStore) throws {
        try store.update { registry in
            guard let i = registry.instances.firstIndex(where: { $0.directory == directory }) else { return }
            registry.instances[i].daemon = .current()
            registry.instances[i].claimant = nil
            registry.instances[i].runtime = runtime
        }
    }

    /// Forgets the daemon of a checkout (it stopped), unless another daemon took the entry over meanwhile.
    public static func release(directory: String, daemon: ProcessRef, store: InstanceStore) {
        _ = try? store.update { registry in
            guard let i = registry.instances.firstIndex(where: { $0.directory == directory }),
                  registry.instances[i].daemon == daemon else { return }
            registry.instances[i].daemon = nil
        }
    }

    /// Every entry with its state, for `sagedev instances`.
    public static func list(store: InstanceStore) -> [(record: InstanceRecord, state: InstanceRecord.State)] {
        let listening = PortOccupancy.listeningPorts()
        return store.read().instances.map { ($0, $0.state(portHeld: { listening.contains($0) })) }
    }
}

/// Compose project names: the configured name for the first checkout that uses it, and for every other checkout
/// that name plus a short hash of its directory, so containers, volumes and networks never collide and stay with
/// their checkout whatever slot it runs in.
public enum InstanceNames {
    public static func project(base: String, directory: String, registry: InstanceRegistry) -> String {
        if let mine = registry.record(for: directory), mine.baseProject == base { return mine.project }
        let taken = Set(registry.instances.filter { $0.directory != directory }.map(\.project))
        return taken.contains(base) ? "\(base)-\(shortHash(directory))" : base
    }

    /// The first 6 hex digits of the SHA-256 of the directory's path.
    public static func shortHash(_ directory: String) -> String {
        String(Bytes.hex(SHA256.hash(Array(directory.utf8))).prefix(6))
    }
}

/// How a claim learns who listens where: the system's sockets, or a fake in unit tests.
public struct PortProbe: Sendable {
    public var listeningPorts: @Sendable () -> Set<Int>
    public var conflict: @Sendable (_ bindAddress: String, _ port: Int) -> PortConflict?
    public init(listeningPorts: @escaping @Sendable () -> Set<Int>,
                conflict: @escaping @Sendable (_ bindAddress: String, _ port: Int) -> PortConflict?) {
        self.listeningPorts = listeningPorts; self.conflict = conflict
    }
    public static let system = PortProbe(listeningPorts: { PortOccupancy.listeningPorts() },
                                         conflict: { PortOccupancy.conflict(bindAddress: $0, port: $1) })
}

/// Who listens on a host port, on every address a client of this stack might dial.
public enum PortOccupancy {
    /// The addresses to check for a bind address: a loopback address also checks the other family's loopback,
    /// since "localhost" resolves to ::1 first for many clients (Node 17+, Vite).
    public static func addresses(bindAddress: String) -> [String] {
        switch bindAddress {
        case "127.0.0.1", "localhost", "": return ["127.0.0.1", "::1"]
        case "::1", "[::1]": return ["::1", "127.0.0.1"]
        default: return [bindAddress]
        }
    }

    public static func conflict(bindAddress: String, port: Int) -> PortConflict? {
        for a in addresses(bindAddress: bindAddress) { if let c = PortCheck.check(host: a, port: port) { return c } }
        return nil
    }

    /// Every TCP port something listens on (IPv4 and IPv6).
    public static func listeningPorts() -> Set<Int> {
        Set(ProcFS.listeningSockets().map(\.port))
    }
}

extension Placement {
    /// Each service's port key set to its port in this slot.
    public func portOverrides(for c: Config) -> [String: String] {
        var out: [String: String] = [:]
        for p in c.slotPorts { out[p.key] = String(p.port + offset) }
        return out
    }
}

extension Config {
    /// Every service's host port with the `.env` key that sets it: what a slot moves.
    public var slotPorts: [SlotPort] {
        services.specs.compactMap { s in
            guard let port = s.port, let key = s.portKey else { return nil }
            return SlotPort(service: s.id.rawValue, key: key, port: port)
        }
    }

    /// The ports as configured, before the slot moved them.
    public var configuredSlotPorts: [SlotPort] {
        slotPorts.map { SlotPort(service: $0.service, key: $0.key, port: $0.port - placement.offset) }
    }
}
