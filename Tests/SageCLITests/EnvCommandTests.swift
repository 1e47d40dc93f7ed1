import Testing
import SageWire
@testable import SageCLI

@Suite struct EnvCommandTests {
    @Test func dotenvValuesReadBackAsWritten() {
        let values = ["plain": "postgres://u:p@127.0.0.1:5442/db", "spaced": "a b", "quote": "it's $HOME", "dollar": "p$ss"]
        let text = values.sorted { $0.key < $1.key }.map { "\($0.key.uppercased())=\(DotEnv.quote($0.value))" }.joined(separator: "\n")
        let doc = DotEnv.parse(text, environment: ["HOME": "/root"])
        for (k, v) in values { #expect(doc.values[k.uppercased()] == v, "\(k): \(text)") }
    }

    @Test func shellQuotingSurvivesQuotes() {
        #expect(EnvCommand.shellQuoted("it's") == "'it'\\''s'")
    }

    @Test func anUnknownFormatIsAUsageError() {
        let c = Captured()
        #expect(SageCLI.run(["env", "--format", "yaml"], context: c.context) == 64)
        #expect(c.err.current.contains("dotenv, json, shell"))
    }
}
