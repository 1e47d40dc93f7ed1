import Foundation

// The stack's commands on the control socket. Each type is a command's arguments; its `Response` is the reply.
// Missing arguments take the defaults written here, so `{"cmd":"logs"}` is a valid request.

/// Who is there: the daemon's pid, project, runtime and versions.
public struct PingRequest: ControlRequest {
    public static let command = "ping"
    public typealias Response = PingResponse
    public init() {}
}

public struct PingResponse: Codable, Sendable, Equatable {
    public var pid: Int
    public var project: String
    public var runtime: String
    public var sagedev: String
    public var `protocol`: Int
}

public struct StatusRequest: ControlRequest {
    public static let command = "status"
    public typealias Response = StatusReport
    public init() {}
}

/// Starts services (all when empty) and what they depend on; streams `progress` and `step` events until they are
/// healthy or one gave up.
public struct UpRequest: ControlRequest {
    public static let command = "up"
    public typealias Response = StatusReport
    public var services: [ServiceID]
    public var watch: Bool
    public init(services: [ServiceID] = [], watch: Bool = true) { self.services = services; self.watch = watch }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        services = try c.decodeIfPresent([ServiceID].self, forKey: .services) ?? []
        watch = try c.decodeIfPresent(Bool.self, forKey: .watch) ?? true
    }
    enum CodingKeys: String, CodingKey { case services, watch }
}

/// Restarts services (all when empty) and waits until they are healthy again, streaming `progress` events.
public struct RestartRequest: ControlRequest {
    public static let command = "restart"
    public typealias Response = StatusReport
    public var services: [ServiceID]
    public init(services: [ServiceID] = []) { self.services = services }
    public init(from decoder: any Decoder) throws {
        services = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent([ServiceID].self, forKey: .services) ?? []
    }
    enum CodingKeys: String, CodingKey { case services }
}

public struct StopRequest: ControlRequest {
    public static let command = "stop"
    public typealias Response = StopResponse
    public var services: [ServiceID]
    public init(services: [ServiceID] = []) { self.services = services }
    public init(from decoder: any Decoder) throws {
        services = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent([ServiceID].self, forKey: .services) ?? []
    }
    enum CodingKeys: String, CodingKey { case services }
}

public struct StopResponse: Codable, Sendable, Equatable {
    public var stopped: [ServiceID]
}

/// Stops every service and then the daemon, once the reply is written. With `volumes`, deletes the data too.
public struct DownRequest: ControlRequest {
    public static let command = "down"
    public typealias Response = DownResponse
    public var volumes: Bool
    public init(volumes: Bool = false) { self.volumes = volumes }
    public init(from decoder: any Decoder) throws {
        volumes = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Bool.self, forKey: .volumes) ?? false
    }
    enum CodingKeys: String, CodingKey { case volumes }
}

public struct DownResponse: Codable, Sendable, Equatable {
    public var stopped: [ServiceID]
    public var volumesRemoved: Bool
    public var runtime: String
    /// Why deleting the data failed (the services were stopped all the same).
    public var error: String?
}

/// The last `tail` lines of each service (all when empty) as `log` events, then, with `follow`, every new line
/// until the client disconnects.
public struct LogsRequest: ControlRequest {
    public static let command = "logs"
    public typealias Response = EmptyResponse
    public var services: [ServiceID]
    public var tail: Int
    public var follow: Bool
    public init(services: [ServiceID] = [], tail: Int = 100, follow: Bool = false) {
        self.services = services; self.tail = tail; self.follow = follow
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        services = try c.decodeIfPresent([ServiceID].self, forKey: .services) ?? []
        tail = try c.decodeIfPresent(Int.self, forKey: .tail) ?? 100
        follow = try c.decodeIfPresent(Bool.self, forKey: .follow) ?? false
    }
    enum CodingKeys: String, CodingKey { case services, tail, follow }
}

/// Ends the daemon and leaves the services running (a new daemon adopts them).
public struct ShutdownRequest: ControlRequest {
    public static let command = "shutdown"
    public typealias Response = EmptyResponse
    public init() {}
}

/// Streams a `progress` or `step` event for every change of the stack until the client disconnects (the live
/// view `status --watch` redraws on them). No reply ends it.
public struct WatchRequest: ControlRequest {
    public static let command = "watch"
    public typealias Response = EmptyResponse
    public init() {}
}
