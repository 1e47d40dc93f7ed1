import Testing
import Foundation
import SageSystem

/// `status --json` against its published schema (Sources/SageCore/Daemon/status.schema.json).
@Suite struct StatusSchemaTests {
    static func schema() throws -> JSONValue {
        let text = try #require(FileDescriptor.readText(Repo.root + "/Sources/SageCore/Daemon/status.schema.json"))
        return try JSONValue.parse(text)
    }

    @Test func statusJSONOfARunningStackMatchesTheSchema() throws {
        let p = try TestProject()
        let up = try p.sagedev(["up"])
        #expect(up.status == .exited(0), "\(up.stderrText)")
        // The background refresh adds Postgres connections and Valkey memory once the services are healthy.
        var text = ""
        let complete = waitUntil(.after(seconds: 20)) {
            guard let r = try? p.sagedev(["status", "--json"], timeout: 30), let doc = try? JSONValue.parse(r.stdoutText) else { return false }
            text = r.stdoutText
            let services = doc["services"]?.array ?? []
            return services.contains { $0["connections"] != nil } && services.contains { $0["memory"] != nil }
        }
        #expect(complete, "\(text)")
        let doc = try JSONValue.parse(text)
        let violations = JSONSchema.violations(of: doc, against: try Self.schema())
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))\n\(text)")
        #expect(doc["v"]?.int == 1 && doc["running"]?.bool == true && doc["healthy"]?.bool == true)
        #expect(doc["services"]?.array?.compactMap { $0["name"]?.string } == ["postgres", "valkey", "backend", "frontend"])
        #expect(!text.contains(p.postgresPassword) && !text.contains(p.valkeyPassword))
    }

    @Test func statusJSONWithoutADaemonMatchesTheSchema() throws {
        let p = try TestProject()
        let r = try p.sagedev(["status", "--json"])
        #expect(r.status == .exited(3))
        let doc = try JSONValue.parse(r.stdoutText)
        #expect(JSONSchema.violations(of: doc, against: try Self.schema()).isEmpty, "\(r.stdoutText)")
        #expect(doc["running"]?.bool == false && doc["directory"]?.string == p.root)
    }

    /// The validator finds what the schema forbids: a wrong type, a missing field, an unknown field, a bad enum value.
    @Test func theSchemaRejectsDocumentsThatBreakIt() throws {
        let schema = try Self.schema()
        let bad = [
            #"{"v":1,"running":"yes","directory":"/p"}"#,
            #"{"v":1,"directory":"/p"}"#,
            #"{"v":1,"running":false,"directory":"/p","extra":1}"#,
            #"{"v":2,"running":false,"directory":"/p"}"#,
            #"{"v":1,"running":true,"directory":"/p","services":[{"name":"x","state":"sleepy","reason":"","since":0,"restarts":0,"wanted":true,"url":"","details":{}}]}"#,
            #"{"v":1,"running":true,"directory":"/p","services":[{"name":"x","state":"healthy","reason":"","since":0,"restarts":1.5,"wanted":true,"url":"","details":{"pid":3}}]}"#,
        ]
        for text in bad {
            #expect(!JSONSchema.violations(of: try JSONValue.parse(text), against: schema).isEmpty, "\(text)")
        }
        #expect(JSONSchema.violations(of: try JSONValue.parse(#"{"v":1,"running":false,"directory":"/p"}"#), against: schema).isEmpty)
    }
}
