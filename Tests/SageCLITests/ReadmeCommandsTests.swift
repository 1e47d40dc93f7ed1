import Testing
import SageSystem
@testable import SageCLI

@Suite struct ReadmeCommandsTests {
    @Test func readmeDocumentsEveryCommand() throws {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        let readme = try #require(FileDescriptor.readText(parts.joined(separator: "/") + "/README.md"))
        for c in Commands.all where c.name != "version" {
            #expect(readme.contains("`sagedev \(c.name)"), "README.md does not document 'sagedev \(c.name)'")
        }
    }
}
