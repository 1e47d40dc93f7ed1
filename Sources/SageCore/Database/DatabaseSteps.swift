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

}

public typealias DatabaseStepSink = @Sendable (DatabaseStep) -> Void

/// What a finished operation reports: its steps, its total time and what else it has to say (which database, from
/// which source, which migrations…). The reply of the database commands and the body of their `--json`.
public struct DatabaseReport: Codable, Sendable, Equatable {
    public struct Step: Codable, Sendable, Equatable {
        public var name: String
        public var ms: Double
        public var detail: String
    }
    public var operation: String
    public var steps: [Step]
    public var totalMs: Double
    public var database: String?
    /// reset-db: "template" or "replay", the template's name, how files were copied ("spare" for a ready copy);
    /// clone: "ready copy" or "copy".
    public var source: String?
    public var template: String?
    public var fileCopyMethod: String?
    /// The own start of the apps an operation stopped and started again (reset-db --restart-apps, migrate, restores).
    public var appsStartMs: Double?
    /// reset-db: the apps that kept running, and those that exited meanwhile (or, with --restart-apps, were restarted).
    public var appsKept: [String]?
    public var appsRestarted: [String]?
    /// db clone: its name, and its URL with the password (for the program reading it) and redacted.
    public var name: String?
    public var url: String?
    public var redactedUrl: String?
    /// db drop-clone: the clones dropped.
    public var dropped: [String]?
    /// migrate: the migrations applied.
    public var applied: [String]?
    public var snapshot: String?
    /// Backups: the file written or restored.
    public var file: String?

    public var milliseconds: Double { totalMs }

    init(operation: String, steps: [DatabaseStep], milliseconds: Double) {
        self.operation = operation
        self.steps = steps.map { Step(name: $0.name, ms: ($0.milliseconds * 10).rounded() / 10, detail: $0.detail) }
        totalMs = (milliseconds * 10).rounded() / 10
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

    /// The report so far; `fill` adds the operation's own fields.
    func report(_ fill: (inout DatabaseReport) -> Void = { _ in }) -> DatabaseReport {
        var r = DatabaseReport(operation: operation, steps: steps, milliseconds: millisecondsSince(started))
        fill(&r)
        return r
    }
}
