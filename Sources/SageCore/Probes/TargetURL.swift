import SageSystem

/// A readiness target given as a URL, as `sagedev wait` takes them:
///
/// - `postgres://` or `postgresql://user:password@host:port/db` (default port 5432; `?host=/dir` for a Unix socket)
/// - `redis://` or `valkey://[user][:password]@host:port[/db]` (default port 6379)
/// - `http://host:port/path` (default port 80)
/// - `tcp://host:port`
///
/// User and password are percent-decoded. IPv6 hosts go in brackets (`[::1]`). Passwords never appear
/// in `redacted` or in any error message. Malformed URLs throw `SystemError(.invalidAddress)`.
public struct TargetURL: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable { case postgres, valkey, http, tcp }

    public var kind: Kind
    /// As written, lowercased ("postgresql", "redis"…), so that output shows what the person typed.
    public var scheme: String
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    /// Postgres: the database name. Valkey: the database number, if given.
    public var database: String?
    /// HTTP: the request target (path and query), at least "/".
    public var path: String
    /// Postgres: a Unix-socket directory given as `?host=/dir` (or a percent-encoded host starting with "/").
    public var unixSocketDirectory: String?

    public static let defaultPorts: [Kind: Int] = [.postgres: 5432, .valkey: 6379, .http: 80]

    public init(parsing text: String) throws {
        let shown = Self.redact(text)
        guard let sep = Self.find("://", in: text) else {
            throw Self.error("\"\(shown)\" is not a URL: expected scheme://host:port with scheme postgres, postgresql, redis, valkey, http or tcp")
        }
        scheme = String(text[..<sep.lowerBound]).lowercased()
        switch scheme {
        case "postgres", "postgresql": kind = .postgres
        case "redis", "valkey": kind = .valkey
        case "http": kind = .http
        case "tcp": kind = .tcp
        case "rediss", "valkeys", "https":
            throw Self.error("\"\(shown)\": TLS (\(scheme)://) is not supported; use \(scheme.dropLast())://")
        case "":
            throw Self.error("\"\(shown)\" has no scheme: write postgres://, redis://, valkey://, http:// or tcp://")
        default:
            throw Self.error("\"\(shown)\": unknown scheme \"\(scheme)\"; use postgres, postgresql, redis, valkey, http or tcp")
        }
        var rest = Substring(text[sep.upperBound...])
        if kind == .http, let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }

        // Userinfo ends at the last "@", so that an unencoded "@", "/" or "#" in a password still works.
        var userinfo: Substring?
        if kind == .postgres || kind == .valkey {
            if let at = rest.lastIndex(of: "@") {
                userinfo = rest[..<at]; rest = rest[rest.index(after: at)...]
            }
        } else {
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            if rest[..<authorityEnd].contains("@") {
                throw Self.error("\"\(shown)\": \(scheme):// URLs take no user or password")
            }
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let remainder = rest[authorityEnd...]

        // Host and port.
        var hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw Self.error("\"\(shown)\": unclosed \"[\" in the host")
            }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Self.error("\"\(shown)\": unexpected \"\(after)\" after the host") }
                portText = after.dropFirst()
            }
            // An address, optionally with a zone ("fe80::1%25eth0", the "%" percent-encoded).
            let zoneStart = hostText.firstIndex(of: "%") ?? hostText.endIndex
            let address = hostText[..<zoneStart], zone = hostText[zoneStart...]
            guard address.contains(":"), address.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }),
                  zone.isEmpty || (zone.hasPrefix("%25") && zone.count > 3
                                   && zone.dropFirst(3).allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") })) else {
                throw Self.error("\"\(shown)\": \"[\(hostText)]\" is not an IPv6 address")
            }
        } else {
            let colons = authority.filter { $0 == ":" }.count
            if colons > 1 {
                throw Self.error("\"\(shown)\": IPv6 addresses go in brackets, like [::1]:\(Self.defaultPorts[kind] ?? 80)")
            }
            if let colon = authority.firstIndex(of: ":") {
                hostText = authority[..<colon]; portText = authority[authority.index(after: colon)...]
            } else {
                hostText = authority
            }
        }

        if let p = portText {
            guard !p.isEmpty, p.count <= 5, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p), (1...65535).contains(n) else {
                throw Self.error("\"\(shown)\": port \"\(p)\" is not a number from 1 to 65535")
            }
            port = n
        } else if let d = Self.defaultPorts[kind] {
            port = d
        } else {
            throw Self.error("\"\(shown)\": \(scheme):// needs a port, like \(scheme)://127.0.0.1:8080")
        }

        unixSocketDirectory = nil
        if authority.hasPrefix("[") {
            host = hostText.contains("%") ? String(hostText).replacing("%25", with: "%") : String(hostText)
        } else if hostText.contains("%") {
            let decoded = try Self.percentDecode(hostText, what: "host", in: shown)
            guard kind == .postgres, decoded.hasPrefix("/") else {
                throw Self.error("\"\(shown)\": invalid host \"\(hostText)\"")
            }
            unixSocketDirectory = decoded
            host = "localhost"
        } else {
            host = String(hostText)
            if !host.isEmpty {
                guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }) else {
                    throw Self.error("\"\(shown)\": invalid host \"\(host)\"")
                }
            }
        }

        // User and password.
        user = nil; password = nil
        if let info = userinfo {
            if let colon = info.firstIndex(of: ":") {
                user = try Self.percentDecode(info[..<colon], what: "user name", in: shown)
                password = try Self.percentDecode(info[info.index(after: colon)...], what: "password", in: shown)
            } else {
                user = try Self.percentDecode(info, what: "user name", in: shown)
            }
            if user?.isEmpty == true { user = nil }
            if password?.isEmpty == true { password = nil }
        }

        // Path and query.
        database = nil; path = ""
        switch kind {
        case .postgres:
            var pathPart = remainder, query: Substring = ""
            if let q = remainder.firstIndex(of: "?") { pathPart = remainder[..<q]; query = remainder[remainder.index(after: q)...] }
            let db = pathPart.drop { $0 == "/" }
            if db.contains("/") { throw Self.error("\"\(shown)\": the path must be a single database name, like /app") }
            database = try Self.percentDecode(db, what: "database name", in: shown)
            for pair in query.split(separator: "&") where !pair.isEmpty {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = String(kv[0])
                let value = kv.count > 1 ? try Self.percentDecode(kv[1], what: "\(key) parameter", in: shown) : ""
                switch key {
                case "host":
                    guard value.hasPrefix("/") else { throw Self.error("\"\(shown)\": host= must be a Unix-socket directory like /tmp") }
                    unixSocketDirectory = value
                case "sslmode":
                    guard ["disable", "allow", "prefer"].contains(value) else {
                        throw Self.error("\"\(shown)\": sslmode=\(value) needs TLS, which is not supported; use sslmode=disable")
                    }
                case "application_name", "connect_timeout":
                    break
                default:
                    throw Self.error("\"\(shown)\": unsupported query parameter \"\(key)\" (supported: host, sslmode)")
                }
            }
            if host.isEmpty && unixSocketDirectory != nil { host = "localhost" }
            guard let u = user else {
                throw Self.error("\"\(shown)\": no user: write postgres://user:password@host:port/db")
            }
            if database?.isEmpty != false { database = u }
        case .valkey:
            if remainder.contains("?") { throw Self.error("\"\(shown)\": \(scheme):// URLs take no query parameters") }
            let db = remainder.drop { $0 == "/" }
            if !db.isEmpty {
                guard db.count <= 5, db.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                    throw Self.error("\"\(shown)\": the database must be a number, like /0, not \"\(db)\"")
                }
                database = String(db)
            }
        case .http:
            path = remainder.isEmpty ? "/" : (remainder.hasPrefix("?") ? "/" + remainder : String(remainder))
            guard path.allSatisfy({ $0.isASCII && $0 != " " && !$0.isNewline && $0.asciiValue! >= 0x21 }) else {
                throw Self.error("\"\(shown)\": the path must be percent-encoded ASCII without spaces")
            }
        case .tcp:
            guard remainder.isEmpty || remainder == "/" else {
                throw Self.error("\"\(shown)\": tcp:// URLs take only host:port")
            }
        }
        if host.isEmpty {
            throw Self.error("\"\(shown)\": no host: write \(scheme)://127.0.0.1:\(port)")
        }
    }

    /// The URL with the password replaced by ****, in a canonical form.
    public var redacted: String {
        var s = scheme + "://"
        if user != nil || password != nil {
            s += Self.percentEncode(user ?? "")
            if password != nil { s += ":****" }
            s += "@"
        }
        s += formatHostPort(host, port)
        switch kind {
        case .postgres:
            s += "/" + Self.percentEncode(database ?? "")
            if let dir = unixSocketDirectory { s += "?host=" + Self.percentEncode(dir) }
        case .valkey:
            if let db = database { s += "/" + db }
        case .http:
            s += path
        case .tcp:
            break
        }
        return s
    }

    // MARK: helpers

    /// Best-effort redaction of text that may not parse: everything between the first ":" after the
    /// scheme and the last "@" becomes ****.
    public static func redact(_ text: String) -> String {
        let body: Substring, prefix: Substring
        if let sep = find("://", in: text) {
            prefix = text[..<sep.upperBound]; body = text[sep.upperBound...]
        } else {
            prefix = ""; body = text[...]
        }
        guard let at = body.lastIndex(of: "@") else { return text }
        let info = body[..<at]
        guard let colon = info.firstIndex(of: ":") else { return text }
        return String(prefix) + String(info[..<colon]) + ":****" + String(body[at...])
    }

    static func find(_ needle: String, in text: String) -> Range<String.Index>? {
        text.firstRange(of: needle)
    }

    static func percentDecode(_ s: Substring, what: String, in shown: String) throws -> String {
        guard s.contains("%") else { return String(s) }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%") {
                guard bytes.count >= 2, let hi = hexValue(bytes[bytes.startIndex]), let lo = hexValue(bytes[bytes.startIndex + 1]) else {
                    throw error("\"\(shown)\": invalid percent-escape in the \(what) (use %XX with two hex digits)")
                }
                out.append(hi << 4 | lo)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        guard let decoded = String(validating: out, as: UTF8.self) else {
            throw error("\"\(shown)\": the \(what) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    /// Percent-encodes everything outside the URL userinfo-safe set (for display of user names).
    public static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(UnicodeScalar(b))
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                out += "%"; out.unicodeScalars.append(digits[Int(b >> 4)]); out.unicodeScalars.append(digits[Int(b & 15)])
            }
        }
        return out
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func error(_ message: String) -> SystemError {
        SystemError(.invalidAddress, message)
    }
}
