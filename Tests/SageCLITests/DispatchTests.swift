import Testing
import SageSystem
import SageCore
@testable import SageCLI

/// Captures what a command prints.
final class Captured: @unchecked Sendable {
    let out = Locked(""), err = Locked("")
    var context: CommandContext {
        CommandContext(output: Output(isTTY: false, useColour: false,
                                      out: { s in self.out.withValue { $0 += s } },
                                      err: { s in self.err.withValue { $0 += s } }),
                       environment: [:], workingDirectory: "/tmp", stdinIsTTY: false,
                       readLine: { nil }, executablePath: "/bin/false")
    }
}

@Suite struct DispatchTests {
    @Test func unknownCommandExits64WithSuggestion() {
        let c = Captured()
        #expect(SageCLI.run(["versoin"], context: c.context) == 64)
        #expect(c.err.current.contains("Did you mean 'version'?"))
        #expect(c.out.current.isEmpty)
    }
    @Test func helpListsCommands() {
        let c = Captured()
        #expect(SageCLI.run(["--help"], context: c.context) == 0)
        for cmd in Commands.all { #expect(c.out.current.contains(cmd.name)) }
    }
    @Test func versionFlag() {
        let c = Captured()
        #expect(SageCLI.run(["--version"], context: c.context) == 0)
        #expect(c.out.current == "sagedev \(sagedevVersion)\n")
    }
}
