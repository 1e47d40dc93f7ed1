import Foundation

/// One container of the project as `docker compose ps --format json` (or `docker ps --format '{{json .}}'`) shows it.
public struct ComposeContainer: Sendable, Equatable {
    public struct Publisher: Sendable, Equatable {
        public var url: String
        public var targetPort: Int
        public var publishedPort: Int
        public var proto: String
        public init(url: String, targetPort: Int, publishedPort: Int, proto: String) {
            self.url = url; self.targetPort = targetPort; self.publishedPort = publishedPort; self.proto = proto
        }
    }
    public var id: String
    public var name: String
    public var service: String
    public var project: String
    public var image: String
    /// running, exited, created, restarting, paused, dead.
    public var state: String
    /// healthy, unhealthy, starting, or "" without a healthcheck.
    public var health: String
    public var status: String
    public var exitCode: Int?
    public var ports: String
    public var publishers: [Publisher]

    public init(id: String, name: String, service: String, project: String = "", image: String = "", state: String,
                health: String = "", status: String = "", exitCode: Int? = nil, ports: String = "", publishers: [Publisher] = []) {
        self.id = id; self.name = name; self.service = service; self.project = project; self.image = image
        self.state = state; self.health = health; self.status = status; self.exitCode = exitCode
        self.ports = ports; self.publishers = publishers
    }

    public var isRunning: Bool { state == "running" || state == "restarting" }

    /// Parses `ps` JSON output: Compose v2.21+ prints one object per line, older v2 a single array; an empty
    /// project prints nothing (or `[]`). Throws on anything else, quoting the start of the text.
    public static func parseList(_ text: String) throws -> [ComposeContainer] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        var objects: [[String: Any]] = []
        if trimmed.hasPrefix("[") {
            guard let array = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [Any] else {
                throw RuntimeError(nil, "cannot parse the JSON array from `ps --format json`: \(trimmed.prefix(200))")
            }
            for item in array {
                guard let o = item as? [String: Any] else { throw RuntimeError(nil, "`ps --format json` gave a non-object element") }
                objects.append(o)
            }
        } else {
            for line in trimmed.split(separator: "\n") {
                let l = line.trimmingCharacters(in: .whitespaces)
                if l.isEmpty { continue }
                guard let o = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else {
                    throw RuntimeError(nil, "cannot parse a line of `ps --format json`: \(l.prefix(200))")
                }
                objects.append(o)
            }
        }
        return objects.map(ComposeContainer.init(json:))
    }

    /// Builds a container from one JSON object, accepting the field names of both Compose and `docker ps`.
    public init(json o: [String: Any]) {
        func str(_ k: String) -> String {
            if let s = o[k] as? String { return s }
            if let n = o[k] as? NSNumber { return n.stringValue }
            return ""
        }
        let labels = ComposeContainer.parseLabels(o["Labels"])
        id = str("ID")
        name = str("Name").isEmpty ? str("Names") : str("Name")
        service = str("Service").isEmpty ? (labels["com.docker.compose.service"] ?? "") : str("Service")
        project = str("Project").isEmpty ? (labels["com.docker.compose.project"] ?? "") : str("Project")
        image = str("Image")
        status = str("Status")
        var st = str("State").lowercased()
        if st.isEmpty {
            // docker ps before 20.10 has no State: derive it from Status ("Up 3 minutes", "Exited (0) …").
            st = status.hasPrefix("Up") ? "running" : status.hasPrefix("Exited") ? "exited" : status.lowercased()
        }
        state = st
        var h = str("Health").lowercased()
        if h.isEmpty {
            for candidate in ["healthy", "unhealthy", "health: starting"] where status.contains("(\(candidate))") {
                h = candidate == "health: starting" ? "starting" : candidate
            }
        }
        health = h
        if let n = o["ExitCode"] as? NSNumber { exitCode = n.intValue } else { exitCode = Int(str("ExitCode")) }
        ports = str("Ports")
        var pubs: [Publisher] = []
        for p in (o["Publishers"] as? [Any]) ?? [] {
            guard let d = p as? [String: Any] else { continue }
            let published = (d["PublishedPort"] as? NSNumber)?.intValue ?? 0
            let target = (d["TargetPort"] as? NSNumber)?.intValue ?? 0
            pubs.append(Publisher(url: d["URL"] as? String ?? "", targetPort: target, publishedPort: published,
                                  proto: d["Protocol"] as? String ?? "tcp"))
        }
        publishers = pubs
    }

    /// Labels come as a "k=v,k=v" string from ps, or as an object from inspect.
    static func parseLabels(_ value: Any?) -> [String: String] {
        if let d = value as? [String: String] { return d }
        guard let s = value as? String else { return [:] }
        var out: [String: String] = [:]
        for pair in s.split(separator: ",") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        return out
    }

    /// Published ports as people read them: "127.0.0.1:5432->5432/tcp".
    public var portsDescription: String {
        let published = publishers.filter { $0.publishedPort != 0 }
        if published.isEmpty { return ports }
        return published.map { "\($0.url.isEmpty ? "" : $0.url + ":")\($0.publishedPort)->\($0.targetPort)/\($0.proto)" }
            .joined(separator: ", ")
    }
}
