import SageSystem

/// Readiness of a service without a port (a worker): ready once its process has stayed up `seconds`. The
/// runtime tells how long the current process has been running (nil: none runs).
public struct ProcessAliveProbe: Probe {
    public let service: ServiceID
    public let seconds: Double
    let runningSeconds: @Sendable () -> Double?

    public init(service: ServiceID, seconds: Double, runningSeconds: @escaping @Sendable () -> Double?) {
        self.service = service; self.seconds = seconds; self.runningSeconds = runningSeconds
    }

    public var target: String { "process of \(service.rawValue)" }

    public func check(deadline: Deadline) -> ProbeOutcome {
        guard let up = runningSeconds() else { return .notReady("\(service.rawValue) has no running process") }
        if up >= seconds { return .ready("process up for \(formatSeconds(up))") }
        return .notReady("process up for \(formatSeconds(up)); ready once it has run \(formatSeconds(seconds))")
    }

    private func formatSeconds(_ s: Double) -> String {
        let tenths = Int((s * 10).rounded(.down))
        return "\(tenths / 10).\(tenths % 10) s"
    }
}

extension ProcFS {
    /// How long a process has been running, from its start tick and the system's uptime.
    public static func runningSeconds(pid: Int32) -> Double? {
        guard let start = startTime(pid: pid),
              let text = FileDescriptor.readText("/proc/uptime"),
              let uptime = text.split(separator: " ").first.flatMap({ Double($0) }) else { return nil }
        return max(0, uptime - Double(start) / Double(clockTicksPerSecond))
    }
}
