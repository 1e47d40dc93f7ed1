/// The four services of the Sage stack, in start order.
public enum ServiceName: String, CaseIterable, Sendable, Codable, Comparable {
    case postgres, valkey, backend, frontend

    public static func < (a: ServiceName, b: ServiceName) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
    /// Services that must be healthy before this one starts.
    public var dependencies: [ServiceName] {
        switch self {
        case .postgres, .valkey: return []
        case .backend: return [.postgres, .valkey]
        case .frontend: return [.backend]
        }
    }
    public var isApp: Bool { self == .backend || self == .frontend }
    /// The .env key that sets this service's host port.
    public var portKey: String {
        switch self {
        case .postgres: return "POSTGRES_PORT"; case .valkey: return "VALKEY_PORT"
        case .backend: return "BACKEND_PORT"; case .frontend: return "FRONTEND_PORT"
        }
    }
}
