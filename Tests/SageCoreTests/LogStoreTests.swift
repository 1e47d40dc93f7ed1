import Testing
import Glibc
import SageSystem
@testable import SageCore

@Suite struct LogStoreTests {
    func tempDirectory() -> String {
        var template = Array("/tmp/sagedev-logs-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template)!)
    }

    @Test func rotatesAtTheLimitKeepingThree() throws {
        let dir = tempDirectory()
        defer { _ = try? Subprocess.run(["rm", "-rf", dir], deadline: .after(seconds: 10)) }
        let logs = LogStore(directory: dir, rotateBytes: 1000, keep: 3, ringCapacity: 50)
        let line = String(repeating: "x", count: 99)  // 100 bytes with the newline
        for i in 0..<55 { logs.appendLine("backend", "\(i % 10)" + line.dropFirst()) }
        let p = logs.path(for: "backend")
        for suffix in ["", ".1", ".2", ".3"] { #expect(FileDescriptor.exists(p + suffix), "\(suffix)") }
        #expect(!FileDescriptor.exists(p + ".4"))
        for suffix in [".1", ".2", ".3"] { #expect((FileDescriptor.readFile(p + suffix) ?? []).count == 1000) }
        #expect((FileDescriptor.readFile(p) ?? []).count == 500)
        // The ring buffer keeps the newest lines.
        #expect(logs.tail("backend", 100).count == 50)
        #expect(logs.tail("backend", 1).first?.text.hasPrefix("4") == true)
    }

    @Test func partialLinesWaitForTheirEnd() {
        let logs = LogStore(directory: tempDirectory())
        logs.append("postgres", bytes: Array("first\nsec".utf8))
        #expect(logs.tail("postgres", 10).map(\.text) == ["first"])
        logs.append("postgres", bytes: Array("ond\n".utf8))
        #expect(logs.tail("postgres", 10).map(\.text) == ["first", "second"])
    }

    @Test func copyTruncateKeepsWhatAServiceWroteItself() throws {
        let dir = tempDirectory()
        defer { _ = try? Subprocess.run(["rm", "-rf", dir], deadline: .after(seconds: 10)) }
        let logs = LogStore(directory: dir, rotateBytes: 10, keep: 2)
        let p = logs.path(for: "valkey")
        try FileDescriptor.writeFileAtomically(p, Array("written by the service\n".utf8))
        logs.ingest("valkey", bytes: Array("written by the service\n".utf8))
        logs.copyTruncate("valkey")
        #expect(FileDescriptor.readText(p + ".1") == "written by the service\n")
        #expect(FileDescriptor.readText(p) == "")
        #expect(logs.tail("valkey", 5).map(\.text) == ["written by the service"])
    }

    @Test func subscribersSeeNewLinesUntilTheyLeave() {
        let logs = LogStore(directory: tempDirectory())
        let seen = Locked<[String]>([])
        let token = logs.subscribe { l in seen.withValue { $0.append("\(l.service):\(l.text)") } }
        logs.appendLine("backend", "one")
        logs.unsubscribe(token)
        logs.appendLine("backend", "two")
        #expect(seen.current == ["backend:one"])
    }
}
