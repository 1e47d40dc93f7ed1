import Foundation
import SageSystem

/// A container event from `docker events --format '{{json .}}'`.
public struct ContainerEvent: Sendable, Equatable {
    public var action: String
    public var containerID: String
    public var service: String
    public var project: String
    public var name: String
    public var exitCode: Int?
    /// Nanoseconds since the epoch.
    public var timeNano: Int64

    public init(action: String, containerID: String, service: String, project: String, name: String = "",
                exitCode: Int? = nil, timeNano: Int64 = 0) {
        self.action = action; self.containerID = containerID; self.service = service; self.project = project
        self.name = name; self.exitCode = exitCode; self.timeNano = timeNano
    }

    /// nil for lines that are not a container event.
    public static func parse(_ line: String) -> ContainerEvent? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        let type = (o["Type"] as? String) ?? "container"
        guard type == "container" else { return nil }
        let actor = o["Actor"] as? [String: Any] ?? [:]
        let attrs = actor["Attributes"] as? [String: String] ?? [:]
        let action = (o["Action"] as? String) ?? (o["status"] as? String) ?? ""
        let id = (actor["ID"] as? String) ?? (o["id"] as? String) ?? ""
        guard !action.isEmpty, !id.isEmpty else { return nil }
        var nano: Int64 = (o["timeNano"] as? NSNumber)?.int64Value ?? 0
        if nano == 0, let t = (o["time"] as? NSNumber)?.int64Value { nano = t * 1_000_000_000 }
        return ContainerEvent(action: action, containerID: id, service: attrs["com.docker.compose.service"] ?? "",
                              project: attrs["com.docker.compose.project"] ?? "", name: attrs["name"] ?? "",
                              exitCode: attrs["exitCode"].flatMap { Int($0) }, timeNano: nano)
    }

    /// Docker reports a main process killed by signal N as exit code 128+N.
    public var exitStatus: ExitStatus {
        guard let c = exitCode else { return .exited(-1) }
        if c > 128 && c < 128 + 65 { return .signalled(Int32(c - 128)) }
        return .exited(Int32(c))
    }
}
