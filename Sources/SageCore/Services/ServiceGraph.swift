/// The stack's services in start order (a topological sort of `dependsOn`; ties keep declaration order), with
/// lookups the machine, the runtimes and the commands share. Built only through `ServiceGraph.build`, which reports
/// cycles and unknown names instead of trapping.
public struct ServiceGraph: Sendable, Equatable {
    /// In start order: every service comes after everything it depends on.
    public let specs: [ServiceSpec]
    private let index: [ServiceID: Int]

    public enum Problem: Sendable, Equatable {
        case unknownDependency(service: ServiceID, dependency: ServiceID, source: ConfigSource?)
        case cycle([ServiceID], sources: [ConfigSource])
        case duplicate(ServiceID, source: ConfigSource?)
    }
    /// Every problem found at once, so the loader can report them all as config issues.
    public struct Problems: Error, Sendable, Equatable { public var list: [Problem] }

    /// Sorts `specs` topologically (Kahn's algorithm, picking the earliest-declared ready spec each time, so the
    /// order is stable and matches the declaration where the graph allows).
    public static func build(_ declared: [ServiceSpec]) throws(Problems) -> ServiceGraph {
        var problems: [Problem] = []
        var position: [ServiceID: Int] = [:]
        var unique: [ServiceSpec] = []
        for s in declared {
            if position[s.id] != nil { problems.append(.duplicate(s.id, source: s.source)); continue }
            position[s.id] = unique.count
            unique.append(s)
        }
        for s in unique {
            for d in s.dependsOn where position[d.id] == nil {
                problems.append(.unknownDependency(service: s.id, dependency: d.id, source: s.source))
            }
        }
        if !problems.isEmpty { throw Problems(list: problems) }

        var remaining = unique.map { Set($0.dependsOn.map(\.id)) }
        var done = Array(repeating: false, count: unique.count)
        var order: [ServiceSpec] = []
        while order.count < unique.count {
            guard let next = unique.indices.first(where: { !done[$0] && remaining[$0].isEmpty }) else {
                let cycle = findCycle(unique, done: done)
                throw Problems(list: [.cycle(cycle.map { unique[$0].id }, sources: cycle.compactMap { unique[$0].source })])
            }
            done[next] = true
            order.append(unique[next])
            for i in unique.indices { remaining[i].remove(unique[next].id) }
        }
        return ServiceGraph(sorted: order)
    }

    /// For specs already in a valid start order (the standard services); everything else goes through `build`.
    init(sorted: [ServiceSpec]) {
        specs = sorted
        var ix: [ServiceID: Int] = [:]
        for (i, s) in sorted.enumerated() { ix[s.id] = i }
        index = ix
    }

    /// One cycle among the specs not yet placed, as indices in dependency order (a → b means a depends on b).
    private static func findCycle(_ specs: [ServiceSpec], done: [Bool]) -> [Int] {
        let pos = Dictionary(uniqueKeysWithValues: specs.enumerated().map { ($1.id, $0) })
        var path: [Int] = []
        var onPath = Set<Int>()
        var current = specs.indices.first { !done[$0] }!
        while !onPath.contains(current) {
            path.append(current); onPath.insert(current)
            current = specs[current].dependsOn.compactMap { pos[$0.id] }.first { !done[$0] }!
        }
        return Array(path[path.firstIndex(of: current)!...])
    }

    public var ids: [ServiceID] { specs.map(\.id) }
    /// The services that run (everything but the jobs), in start order.
    public var serviceIDs: [ServiceID] { specs.filter { !$0.isJob }.map(\.id) }
    /// Stop order: dependents first.
    public var stopOrder: [ServiceID] { ids.reversed() }
    public subscript(_ id: ServiceID) -> ServiceSpec? { index[id].map { specs[$0] } }
    public func contains(_ id: ServiceID) -> Bool { index[id] != nil }

    /// Services that depend on `id`, directly or through others, in start order.
    public func dependents(of id: ServiceID) -> [ServiceID] {
        var found: Set<ServiceID> = [id]
        var out: [ServiceID] = []
        for s in specs where s.dependsOn.contains(where: { found.contains($0.id) }) {
            found.insert(s.id); out.append(s.id)
        }
        return out
    }

    /// What `id` depends on, directly or through others, in start order.
    public func dependencies(of id: ServiceID) -> [ServiceID] {
        guard let s = self[id] else { return [] }
        var needed = Set(s.dependsOn.map(\.id))
        for other in specs.reversed() where needed.contains(other.id) { needed.formUnion(other.dependsOn.map(\.id)) }
        return ids.filter { needed.contains($0) }
    }
}
