import Testing
import Foundation
import SageSystem
@testable import SageCore

/// README.md stays true: its configuration table is the key table, and it lists every command.
@Suite struct ReadmeTests {
    static let begin = "<!-- config-table: generated from ConfigKey.all; SAGEDEV_UPDATE_GENERATED=1 swift test --filter ReadmeTests -->\n"
    static let end = "<!-- /config-table -->"

    @Test func configurationTableIsTheKeyTable() throws {
        let path = ConfigRepoFiles.root + "/README.md"
        let readme = try #require(FileDescriptor.readText(path))
        let table = EnvExample.markdownTable()
        guard let b = readme.range(of: Self.begin), let e = readme.range(of: Self.end), b.upperBound <= e.lowerBound else {
            Issue.record("README.md lacks the config-table markers")
            return
        }
        let current = String(readme[b.upperBound..<e.lowerBound])
        if ConfigRepoFiles.updating && current != table {
            let updated = String(readme[..<b.upperBound]) + table + String(readme[e.lowerBound...])
            try FileDescriptor.writeFileAtomically(path, Array(updated.utf8))
            return
        }
        #expect(current == table, "README's configuration table is out of date: run SAGEDEV_UPDATE_GENERATED=1 swift test --filter ReadmeTests")
        for key in ConfigKey.all { #expect(readme.contains("`\(key.name)`")) }
    }

    @Test func theTwoCommandsAreTheScriptsThatExist() throws {
        let readme = try #require(FileDescriptor.readText(ConfigRepoFiles.root + "/README.md"))
        for script in ["scripts/up-example.sh", "scripts/test.sh"] {
            #expect(readme.contains(script))
            #expect(FileDescriptor.isExecutable(ConfigRepoFiles.root + "/" + script))
        }
        let ci = try #require(FileDescriptor.readText(ConfigRepoFiles.root + "/.ci/run"))
        #expect(ci.contains("scripts/test.sh"))
    }
}
