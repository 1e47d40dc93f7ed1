/// How an app starts: its dev command with the dev server adapter's options. Both runtimes launch this command;
/// the adapter's variables are part of the app's environment (`Config.environment(of:)`).
public struct AppLaunch: Sendable, Equatable {
    public var command: String
    public var detection: DevServerDetection
}

extension Config {
    /// Reads the app's package.json when the framework is `auto`.
    public func launch(_ s: ServiceID) -> AppLaunch? {
        guard let a = app(s) else { return nil }
        let d = DevServerAdapter.detect(a, projectDirectory: projectDirectory)
        return AppLaunch(command: DevServerAdapter.command(a.devCommand, rule: d.rule), detection: d)
    }

    /// The dev server adapter's variables added to an app's environment, each unless the environment already has
    /// it (a `.env` value wins): Vite's VITE_API_URL takes the value of BACKEND_PUBLIC_URL.
    func withDevServerVariables(_ s: ServiceID, _ env: [(name: String, value: EnvironmentValue)]) -> [(name: String, value: EnvironmentValue)] {
        guard let a = app(s), let rule = DevServerAdapter.detect(a, projectDirectory: projectDirectory).rule else { return env }
        var out = env
        for v in rule.environment where !out.contains(where: { $0.name == v.name }) {
            if let from = out.first(where: { $0.name == v.from }) { out.append((v.name, from.value)) }
        }
        return out
    }
}
