/// Follows a dev server's log for its compiler's build reports (tsc in watch mode prints each error as
/// `file(line,col): error TSnnnn: …`, then `Found N errors. Watching for file changes.`). Pure: lines in, events out.
public struct BuildLog: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        /// A build ended with errors: the first error line, and how many lines held an error.
        case failed(String, errors: Int)
        case succeeded
    }
    public let report: DevServerRule.BuildReport
    private var errors: [String] = []

    public init(report: DevServerRule.BuildReport) { self.report = report }

    public mutating func received(_ line: String) -> Event? {
        if line.contains(report.errorMarker) {
            errors.append(line.trimmed)
            return nil
        }
        guard line.contains(report.summaryMarker) else { return nil }
        defer { errors = [] }
        if line.contains(report.successMarker) || errors.isEmpty { return .succeeded }
        return .failed(errors[0], errors: errors.count)
    }
}
