import Testing
@testable import SageCLI
import SageCore

@Suite struct ArgumentParserTests {
    let options = [OptionSpec("--json", help: ""), OptionSpec("--tail", value: "N", help: ""), OptionSpec("--follow", short: "f", help: "")]

    @Test func parsesFlagsValuesAndPositionals() throws {
        let p = try ArgumentParser.parse(["--json", "-f", "--tail", "20", "backend", "--tail=5"], options: options, command: "logs")
        #expect(p.has("--json") && p.has("--follow"))
        #expect(p.value("--tail") == "5")
        #expect(p.positionals == ["backend"])
    }

    @Test func unknownOptionSuggests() {
        #expect { try ArgumentParser.parse(["--jsn"], options: options, command: "status") } throws: { e in
            let e = e as! CLIError
            return e.exitCode == 64 && e.message.contains("did you mean --json?")
        }
    }

    @Test func missingValueIsUsageError() {
        #expect(throws: CLIError.self) { try ArgumentParser.parse(["--tail"], options: options, command: "logs") }
    }

    @Test func editDistance() {
        #expect(Suggestion.distance("stauts", "status") == 2)
        #expect(Suggestion.closest(to: "stauts", among: ["status", "up", "down"]) == "status")
        #expect(Suggestion.closest(to: "zzzzzz", among: ["status", "up"]) == nil)
    }
}
