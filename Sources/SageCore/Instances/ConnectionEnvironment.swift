/// What `sagedev env` prints: this checkout's resolved connection values — the URLs its services get, every
/// service's port and the compose project name — taken from the same service environments the runtimes spawn with.
extension Config {
    public func connectionEnvironment() -> [String: String] {
        var out: [String: String] = ["SAGEDEV_PROJECT": projectName, "SAGEDEV_SLOT": String(placement.slot)]
        for p in slotPorts { out[p.key] = String(p.port) }
        for s in services.specs where s.isApp || s.container != nil {
            for (k, v) in serviceEnvironment(s.id) where k.hasSuffix("_URL") && passthrough[k] == nil && out[k] == nil {
                out[k] = v
            }
        }
        return out
    }
}

/// Whether a key's value is a secret by its name (`*_PASSWORD`, `*_SECRET`, `*_TOKEN`, `*_API_KEY`, …): what
/// `sagedev env`, `init` and the MCP server never show.
public func looksSecret(_ key: String) -> Bool {
    let u = key.uppercased()
    return ["PASSWORD", "SECRET", "TOKEN", "PRIVATE", "CREDENTIAL", "_KEY", "APIKEY"].contains { u.contains($0) }
}

/// A service's environment as people may see it: secret keys as ****, passwords out of URLs.
extension Config {
    public func redactedServiceEnvironment(_ id: ServiceID) -> [String: String] {
        var env = serviceEnvironment(id)
        for (k, v) in env { env[k] = looksSecret(k) && !v.isEmpty ? "****" : redactingURLPassword(v) }
        return env
    }
}

/// Passwords out of URLs: `scheme://user:secret@host` → `scheme://user:****@host` (and `scheme://:secret@…`).
public func redactingURLPassword(_ value: String) -> String {
    guard let scheme = value.range(of: "://") else { return value }
    let rest = value[scheme.upperBound...]
    let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
    guard let at = rest[..<authorityEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") else { return value }
    guard rest.index(after: colon) < at else { return value }
    return String(value[..<rest.index(after: colon)]) + "****" + String(value[at...])
}
