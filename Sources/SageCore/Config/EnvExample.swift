import SageWire

/// `env.example` and the README's configuration table, both generated from `ConfigKey.all`.
/// A test keeps the committed `env.example` byte-for-byte equal to `EnvExample.render()`.
public enum EnvExample {
    public static let fileName = "env.example"

    public static func render() -> String {
        var out = """
            # sagedev configuration. Copy this file to .env in the project directory and edit it:
            #     cp env.example .env
            #
            # The syntax is Docker Compose's .env format: KEY=value, '#' starts a comment, 'single quotes'
            # are literal, "double quotes" understand \\n, \\" and \\\\, ${VAR} and ${VAR:-default} interpolate,
            # and $$ is a literal $. A variable set in the process environment overrides this file.
            # A key left out or left empty takes its default. sagedev prints secrets as ****.
            #
            # Generated from the key table in Sources/SageCore/Config/ConfigKey.swift; do not edit by hand.

            """
        for section in ConfigKey.Section.allCases {
            let keys = ConfigKey.all.filter { $0.section == section }
            guard !keys.isEmpty else { continue }
            out += "\n# --- \(section.rawValue) ---\n"
            for k in keys {
                out += "\n# \(k.meaning)\n"
                var notes = "Default: \(k.documentedDefault)."
                if k.isSecret { notes += " Secret: shown as ****, never written into generated files." }
                if k.example != nil && !k.isPassthroughExample && k.defaultDescription == nil { notes += " Placeholder below: change it." }
                out += "# \(notes)\n"
                let line = "\(k.name)=\(quote(k.exampleValue))"
                out += (k.isPassthroughExample || k.isPattern ? "# " : "") + line + "\n"
            }
        }
        return out
    }

    /// The configuration table for the README: key, default, meaning.
    public static func markdownTable() -> String {
        var out = "| Key | Default | Meaning |\n|---|---|---|\n"
        for k in ConfigKey.all {
            let meaning = k.meaning.replacing("|", with: "\\|")
            out += "| `\(k.name)` | \(k.documentedDefault.replacing("|", with: "\\|")) | \(meaning)\(k.isSecret ? " (secret)" : "") |\n"
        }
        return out
    }

    /// A value written so that Compose's `.env` parser (and sagedev's) reads it back unchanged.
    public static func quote(_ v: String) -> String { DotEnv.quote(v) }
}
