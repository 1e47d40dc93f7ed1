extension TargetURL {
    /// The probe that decides this target's readiness.
    public func makeProbe() -> any Probe {
        switch kind {
        case .postgres:
            return PostgresProbe(host: host, port: port, user: user ?? "", password: password ?? "",
                                 database: database ?? user ?? "", unixSocketDirectory: unixSocketDirectory)
        case .valkey:
            return ValkeyProbe(host: host, port: port, user: user, password: password)
        case .http:
            return HTTPProbe(host: host, port: port, path: path)
        case .tcp:
            return TCPProbe(host: host, port: port)
        }
    }
}
