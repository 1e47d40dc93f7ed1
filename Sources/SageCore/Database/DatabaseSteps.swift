import SageSystem

/// One timed step of a database operation, as the CLI prints it: "drop database   12 ms  sage".
public struct DatabaseStep: Sendable, Equatable {
    public var operation: String
    public var name: String
    public var milliseconds: Double
    public var detail: String

    public init(operation: String, name: String, milliseconds: Double, detail: String) {
        self.operation = operation; self.name = name; self.milliseconds = milliseconds; self.detail = detail
    }

    public var line: String { "\(operation): \(name): \(detail) (\(DatabaseStep.format(milliseconds)))" }

    public static func format(_ ms: Double) -> String {
        ms < 10 ? "\((ms * 10).rounded() / 10) ms" : "\(Int(ms.rounded())) ms"
    }

    public var json: [String: Any] { ["name": name, "ms": (milliseconds * 10).rounded() / 10, "detail": detail] }
}

public typealias DatabaseStepSink = @Sendable (DatabaseStep) -> Void

/// What a finished operation reports: its steps, its total time and anything else worth returning.
public struct DatabaseReport: @unchecked Sendable {
    public var operation: String
    public var steps: [DatabaseStep]
    public var milliseconds: Double
    public var fields: [String: Any]

    public var json: [String: Any] {
        var o = fields
        o["operation"] = operation
        o["steps"] = steps.map(\.json)
        o["totalMs"] = (milliseconds * 10).rounded() / 10
        return o
    }
}

/// Times steps, tells the sink and the "database" log about each, and remembers where a failure happened.
final class StepRecorder: @unchecked Sendable {
    let operation: String
    let sink: DatabaseStepSink
    let logs: LogStore?
    let started = monotonicNanoseconds()
    private(set) var steps: [DatabaseStep] = []
    private(set) var current: String?

    init(_ operation: String, sink: @escaping DatabaseStepSink, logs: LogStore?) {
        self.operation = operation; self.sink = sink; self.logs = logs
    }

    /// Runs a step; `body` returns the detail to show.
    func step(_ name: String, _ body: () throws -> String) throws {
        current = name
        let t = monotonicNanoseconds()
        let detail = try body()
        record(name, millisecondsSince(t), detail)
        current = nil
    }

    func record(_ name: String, _ ms: Double, _ detail: String) {
        let s = DatabaseStep(operation: operation, name: name, milliseconds: ms, detail: detail)
        steps.append(s)
        logs?.appendLine("database", s.line)
        sink(s)
    }

    func note(_ text: String) { logs?.appendLine("database", "\(operation): \(text)") }

    func report(_ fields: [String: Any] = [:]) -> DatabaseReport {
        DatabaseReport(operation: operation, steps: steps, milliseconds: millisecondsSince(started), fields: fields)
    }
}
