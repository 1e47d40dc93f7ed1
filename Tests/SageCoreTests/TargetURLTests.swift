import Testing
import SageSystem
@testable import SageCore

private func parse(_ s: String) throws -> TargetURL { try TargetURL(parsing: s) }

/// Expects a parse error whose message never contains `secret`.
private func expectInvalid(_ s: String, mentioning text: String = "", secret: String? = nil,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let t = try TargetURL(parsing: s)
        Issue.record("\"\(TargetURL.redact(s))\" parsed as \(t.redacted)", sourceLocation: sourceLocation)
    } catch let e as SystemError {
        #expect(e.code == .invalidAddress, sourceLocation: sourceLocation)
        #expect(e.message.contains(text), "\(e.message)", sourceLocation: sourceLocation)
        if let secret { #expect(!e.message.contains(secret), "password leaked: \(e.message)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct TargetURLTests {
    @Test func postgres() throws {
        let t = try parse("postgres://sage:s3cret@127.0.0.1:5433/app")
        #expect(t.kind == .postgres && t.scheme == "postgres")
        #expect(t.host == "127.0.0.1" && t.port == 5433)
        #expect(t.user == "sage" && t.password == "s3cret" && t.database == "app")
        #expect(t.redacted == "postgres://sage:****@127.0.0.1:5433/app")

        let d = try parse("postgresql://sage@db.local/")
        #expect(d.kind == .postgres && d.scheme == "postgresql")
        #expect(d.port == 5432 && d.password == nil && d.database == "sage")
        #expect(d.redacted == "postgresql://sage@db.local:5432/sage")
    }

    @Test func postgresUnixSocket() throws {
        let q = try parse("postgres://sage:pw@/app?host=/tmp/sock%20dir&sslmode=disable")
        #expect(q.unixSocketDirectory == "/tmp/sock dir" && q.host == "localhost" && q.database == "app")
        let h = try parse("postgres://sage@%2Fvar%2Frun%2Fpostgresql:5432/app")
        #expect(h.unixSocketDirectory == "/var/run/postgresql")
    }

    @Test func valkey() throws {
        let full = try parse("valkey://app:p%40ss%3Aw0rd@127.0.0.1:6380/2")
        #expect(full.kind == .valkey && full.user == "app" && full.password == "p@ss:w0rd" && full.database == "2")
        #expect(full.port == 6380)
        #expect(full.redacted == "valkey://app:****@127.0.0.1:6380/2")

        let passOnly = try parse("redis://:hunter2@localhost")
        #expect(passOnly.user == nil && passOnly.password == "hunter2" && passOnly.port == 6379 && passOnly.scheme == "redis")
        #expect(passOnly.redacted == "redis://:****@localhost:6379")

        let userOnly = try parse("redis://admin@localhost:6379")
        #expect(userOnly.user == "admin" && userOnly.password == nil)

        let bare = try parse("redis://127.0.0.1")
        #expect(bare.user == nil && bare.password == nil && bare.database == nil && bare.redacted == "redis://127.0.0.1:6379")
    }

    @Test func unencodedSpecialCharactersInPasswordsStillParse() throws {
        let t = try parse("redis://:a@b/c#d@127.0.0.1:6379/0")
        #expect(t.password == "a@b/c#d" && t.host == "127.0.0.1" && t.database == "0")
        #expect(!t.redacted.contains("a@b"))
    }

    @Test func httpAndTCP() throws {
        let h = try parse("http://localhost:3000/healthz?deep=1#frag")
        #expect(h.kind == .http && h.host == "localhost" && h.port == 3000 && h.path == "/healthz?deep=1")
        #expect(h.redacted == "http://localhost:3000/healthz?deep=1")
        let d = try parse("http://example.test")
        #expect(d.port == 80 && d.path == "/")
        let q = try parse("http://example.test:8080?x=1")
        #expect(q.path == "/?x=1")
        let t = try parse("tcp://127.0.0.1:9000")
        #expect(t.kind == .tcp && t.port == 9000 && t.redacted == "tcp://127.0.0.1:9000")
        #expect(try parse("TCP://127.0.0.1:9000/").kind == .tcp)
    }

    @Test func ipv6Hosts() throws {
        let v = try parse("valkey://:pw@[::1]:6379")
        #expect(v.host == "::1" && v.port == 6379)
        #expect(v.redacted == "valkey://:****@[::1]:6379")
        let p = try parse("postgres://u:p@[fe80::1%25eth0]/db")
        #expect(p.port == 5432)
        let h = try parse("http://[2001:db8::2]/")
        #expect(h.host == "2001:db8::2" && h.port == 80 && h.redacted == "http://[2001:db8::2]:80/")
    }

    @Test func percentDecodingOfUserAndPassword() throws {
        let t = try parse("postgres://us%65r%20name:%F0%9F%94%91%2F%3F@h/db")
        #expect(t.user == "user name" && t.password == "🔑/?")
        #expect(t.redacted == "postgres://user%20name:****@h:5432/db")
    }

    @Test func malformedURLs() {
        expectInvalid("localhost:6379", mentioning: "not a URL")
        expectInvalid("ftp://host:21", mentioning: "unknown scheme")
        expectInvalid("://host:21", mentioning: "no scheme")
        expectInvalid("rediss://:pw@host", mentioning: "TLS", secret: "pw@")
        expectInvalid("https://host/", mentioning: "TLS")
        expectInvalid("tcp://127.0.0.1", mentioning: "needs a port")
        expectInvalid("tcp://127.0.0.1:0", mentioning: "1 to 65535")
        expectInvalid("tcp://127.0.0.1:65536", mentioning: "1 to 65535")
        expectInvalid("tcp://127.0.0.1:http", mentioning: "port")
        expectInvalid("tcp://127.0.0.1:", mentioning: "port")
        expectInvalid("tcp://:80", mentioning: "no host")
        expectInvalid("tcp://127.0.0.1:80/path", mentioning: "only host:port")
        expectInvalid("redis://::1:6379", mentioning: "brackets")
        expectInvalid("redis://[::1:6379", mentioning: "unclosed")
        expectInvalid("redis://[nothex]:6379", mentioning: "IPv6")
        expectInvalid("redis://[::1]x", mentioning: "after the host")
        expectInvalid("redis://host/abc", mentioning: "number")
        expectInvalid("redis://host/0?protocol=3", mentioning: "query")
        expectInvalid("http://user:pw@host/", mentioning: "no user or password", secret: "pw")
        expectInvalid("http://host/a b", mentioning: "percent-encoded")
        expectInvalid("postgres://h:5432/db", mentioning: "no user")
        expectInvalid("postgres://u:pw@h/db/extra", mentioning: "single database")
        expectInvalid("postgres://u:pw@h/db?sslmode=require", mentioning: "TLS", secret: "pw")
        expectInvalid("postgres://u:pw@h/db?foo=1", mentioning: "unsupported query parameter")
        expectInvalid("postgres://u:pw@h/db?host=relative", mentioning: "Unix-socket")
        expectInvalid("redis://host name:6379", mentioning: "invalid host")
    }

    @Test func errorsNeverShowThePassword() {
        expectInvalid("redis://:top%ZZsecret@host", mentioning: "percent-escape", secret: "secret")
        expectInvalid("redis://:topsecret@host:99999", mentioning: "port", secret: "topsecret")
        expectInvalid("redis://:topsecret@::1", mentioning: "brackets", secret: "topsecret")
        expectInvalid("postgres://u:top%FFsecret@h/db", mentioning: "UTF-8", secret: "secret")
        expectInvalid("user:topsecret@host", mentioning: "not a URL", secret: "topsecret")
    }

    @Test func bestEffortRedaction() {
        #expect(TargetURL.redact("redis://:pw@h") == "redis://:****@h")
        #expect(TargetURL.redact("postgres://u:p:w@h/db") == "postgres://u:****@h/db")
        #expect(TargetURL.redact("u:pw@h") == "u:****@h")
        #expect(TargetURL.redact("http://h/") == "http://h/")
        #expect(TargetURL.redact("redis://user@h") == "redis://user@h")
    }
}
