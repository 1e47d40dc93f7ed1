import Foundation
import Testing
import SageSystem
@testable import SageCLI

@Suite struct ReadmeCommandsTests {
    /// The commands of "Use sagedev in your own project" are the ones the non-root end-to-end test runs.
    @Test func ownProjectCommandsAreTheOnesTheNonRootTestRuns() throws {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        let root = parts.joined(separator: "/")
        let readme = try #require(FileDescriptor.readText(root + "/README.md"))
        let test = try #require(FileDescriptor.readText(root + "/Tests/IntegrationTests/NonRootUserTests.swift"))
        let section = try #require(readme.split(separator: "\n## ").first { $0.hasPrefix("Use sagedev in your own project") })
        let block = try #require(section.split(separator: "```").dropFirst().first)
        let commands = block.split(separator: "\n").dropFirst().map { line in
            String(line.split(separator: "#").first ?? "").trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        #expect(commands == ["sagedev/scripts/install.sh", "sagedev toolchain install", "cd app && sagedev init", "sagedev up"])
        for c in commands {
            // `sagedev X` runs through the test's sagedev("X …") helper (ports in the environment).
            let call = c.hasPrefix("sagedev ") && !c.hasPrefix("sagedev toolchain") ? "sagedev(\"" + c.dropFirst("sagedev ".count) : c
            #expect(test.contains(call), "NonRootUserTests does not run '\(c)'")
        }
    }

    @Test func readmeDocumentsEveryCommand() throws {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        let readme = try #require(FileDescriptor.readText(parts.joined(separator: "/") + "/README.md"))
        for c in Commands.all where c.name != "version" {
            #expect(readme.contains("`sagedev \(c.name)"), "README.md does not document 'sagedev \(c.name)'")
        }
    }
}
