/// How a checkout's ports are placed when the configured ones are taken (`SAGEDEV_PORTS`).
public enum PortsMode: String, Sendable, Equatable, CaseIterable {
    /// The default: take the next free slot when the configured ports are held by another sagedev instance of this
    /// user; a port held by anything else is an error naming the holder.
    case shift
    /// Take the next free slot whatever holds the configured ports; every slot passed over is reported with its holder.
    case auto
    /// The configured ports or nothing: any holder is an error.
    case fixed
}

/// One service's port before it is placed: `port` is what `.env` configures, `key` the `.env` key that sets it.
public struct SlotPort: Sendable, Equatable, Hashable {
    public var service: String
    public var key: String
    public var port: Int
    public init(service: String, key: String, port: Int) { self.service = service; self.key = key; self.port = port }
}

/// Who holds a host port, as far as the slot choice cares.
public enum PortHolder: Sendable, Equatable {
    case free
    /// This checkout's own services (left running by a daemon that died, about to be adopted).
    case own
    /// Another sagedev instance of this user: its directory, and a sentence for people.
    case instance(directory: String, description: String)
    /// Anything else: "port 5432 on 127.0.0.1 is in use by nc (pid 812)".
    case stranger(description: String)
}

/// A port of a candidate slot that cannot be used, and why.
public struct PortBlock: Sendable, Equatable {
    public var port: SlotPort     // the configured port
    public var shiftedPort: Int   // what the slot would give it
    public var holder: PortHolder
}

/// The slot a checkout runs in: each service's configured port plus `slot` × `stride`.
public enum SlotDecision: Sendable, Equatable {
    /// `notes` say why lower slots were passed over (empty when the first choice was free).
    case placed(slot: Int, notes: [String])
    /// Nothing starts: one line per blocked port, naming the port, its holder and what to do.
    case refused(String)
}

/// Chooses a slot. Pure: what holds each port comes from `holder`, so the rules are tested without a network.
///
/// Rules:
/// - `fixed`: slot 0; any holder (even another sagedev instance) is an error.
/// - `shift` (default): the remembered slot of this checkout, else slot 0, if free. Held by another sagedev instance:
///   the lowest slot that is free. Held by a stranger: an error naming it; sagedev never moves around a stranger
///   on its own. Slots met later in the search that a stranger holds are passed over with a note.
/// - `auto`: as `shift`, but a stranger on the first choice is passed over too, with a note naming it.
/// A slot is free when every one of its ports is free or held by this checkout's own services; slots whose ports
/// would exceed 65535, or beyond `maxSlot`, are never chosen.
public enum SlotAllocator {
    public static let defaultMaxSlot = 99

    public static func decide(ports: [SlotPort], mode: PortsMode, stride: Int, remembered: Int?,
                              maxSlot: Int = defaultMaxSlot, holder: (Int) -> PortHolder) -> SlotDecision {
        let highest = ports.map(\.port).max() ?? 0
        let limit = stride > 0 ? min(maxSlot, (65_535 - highest) / stride) : 0
        func blocks(_ slot: Int) -> [PortBlock] {
            ports.compactMap { p in
                let shifted = p.port + slot * stride
                switch holder(shifted) {
                case .free, .own: return nil
                case let h: return PortBlock(port: p, shiftedPort: shifted, holder: h)
                }
            }
        }
        if mode == .fixed {
            let found = blocks(0)
            return found.isEmpty ? .placed(slot: 0, notes: []) : .refused(found.map { refusal($0, mode: mode) }.joined(separator: "\n"))
        }
        var first = remembered ?? 0
        if first < 0 || first > limit { first = 0 }
        var notes: [String] = []
        var seenInstances = Set<String>()
        for slot in [first] + (0...max(limit, 0)).filter({ $0 != first }) {
            let found = blocks(slot)
            if found.isEmpty { return .placed(slot: slot, notes: notes) }
            let strangers = found.filter { if case .stranger = $0.holder { return true }; return false }
            if slot == first, mode == .shift, !strangers.isEmpty {
                return .refused(strangers.map { refusal($0, mode: mode) }.joined(separator: "\n"))
            }
            let b = strangers.first ?? found[0]
            switch b.holder {
            case .instance(let dir, let description):
                if seenInstances.insert(dir).inserted { notes.append("slot \(slot) passed over: \(description)") }
            case .stranger(let description):
                notes.append("slot \(slot) passed over: \(description)")
            case .free, .own:
                break
            }
        }
        return .refused("no free port slot for \(ports.map(\.key).joined(separator: ", ")) among slots 0 to \(max(limit, 0)) (stride \(stride)); stop an instance with 'sagedev down', or set SAGEDEV_PORT_STRIDE or the ports in .env")
    }

    static func refusal(_ b: PortBlock, mode: PortsMode) -> String {
        let where_ = b.shiftedPort == b.port.port ? "" : " (\(b.port.key) \(b.port.port) shifted to \(b.shiftedPort))"
        switch b.holder {
        case .stranger(let description):
            let hint = mode == .fixed
                ? "set \(b.port.key) in .env or stop that process"
                : "it is not a sagedev instance, so the ports are not shifted around it; set \(b.port.key) in .env, stop that process, or set SAGEDEV_PORTS=auto to take the next free slot"
            return "\(b.port.service): \(description)\(where_); \(hint)"
        case .instance(_, let description):
            return "\(b.port.service): \(description)\(where_); stop it with 'sagedev down' there, or remove SAGEDEV_PORTS=fixed from .env to take the next free slot"
        case .free, .own:
            return "\(b.port.service): port \(b.shiftedPort) is free"
        }
    }
}
