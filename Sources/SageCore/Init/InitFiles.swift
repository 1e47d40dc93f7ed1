import SageSystem
import SageWire

/// The files `sagedev init` writes, as text, from a plan: `.env` (with passwords), `.env.example` (without), and the
/// lines `.gitignore` gains. Pure: the command does the writing.
public struct InitFiles: Sendable, Equatable {
    public var env: String
    public var envExample: String
    /// Passwords as written into `env`, to redact them from any output.
    public var secrets: [String]

    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: String
        /// A line above the entry ("not decided: …").
        public var note: String?
        public var isSecret: Bool
    }
    public struct Section: Sendable, Equatable {
        public var title: String
        public var entries: [Entry]
    }

    /// Builds the files. `existing` is the current `.env` (--force keeps its passwords and its own keys), `template`
    /// the repository's `.env.example` (the keys it sets win over detection: they are the team's decisions).
    public static func make(plan: InitPlan, existing: DotEnv.Document?, template: DotEnv.Document?,
                            randomPassword: () -> String) -> InitFiles {
        let name = plan.projectName
        let undecided = Dictionary(plan.undecided.map { ($0.key, $0.advice) }, uniquingKeysWith: { a, _ in a })
        func e(_ key: String, _ value: String, secret: Bool = false) -> Entry {
            Entry(key: key, value: value, note: undecided[key].map { "not decided: \($0)" }, isSecret: secret)
        }
        var sections: [Section] = [
            Section(title: "Project", entries: [e("SAGEDEV_PROJECT", name), e("SAGEDEV_RUNTIME", "auto")]),
            Section(title: "PostgreSQL 18", entries: [
                e("POSTGRES_USER", name), e("POSTGRES_PASSWORD", "", secret: true), e("POSTGRES_DB", name), e("POSTGRES_PORT", "5432"),
            ]),
            Section(title: "Valkey 8", entries: [e("VALKEY_PASSWORD", "", secret: true), e("VALKEY_PORT", "6379")]),
        ]
        for (prefix, role, app, port, health) in [("BACKEND", AppRole.backend, plan.backend, "3000", "/health"),
                                                  ("FRONTEND", AppRole.frontend, plan.frontend, "5173", "/")] {
            let title = role == .backend ? "Backend" : "Frontend"
            if let a = app {
                sections.append(Section(title: "\(title): \(a.directory) (\(a.reason); \(a.packageManagerReason))", entries: [
                    e("\(prefix)_DIR", a.directory), e("\(prefix)_DEV_COMMAND", a.devCommand),
                    e("\(prefix)_INSTALL_COMMAND", a.installCommand), e("\(prefix)_PORT", port), e("\(prefix)_HEALTH_PATH", health),
                ]))
            } else {
                sections.append(Section(title: "\(title): none found", entries: [e("\(prefix)_DIR", ""), e("\(prefix)_DEV_COMMAND", "")]))
            }
        }
        var database = plan.database.map { e($0.key, $0.value) }
        if let advice = undecided["SAGEDEV_MIGRATIONS_DIR"] {
            database.append(Entry(key: "SAGEDEV_MIGRATIONS_DIR", value: "db/migrations", note: "not decided: \(advice)", isSecret: false))
        }
        sections.append(Section(title: "Migrations and seeds", entries: database))

        // The repository's own template: its values are the team's choices.
        if let template {
            var extra: [Entry] = []
            for entry in template.entries where entry.form != .inherited {
                let key = ConfigKey.named(entry.key)
                if key?.isSecret == true || key == nil && looksSecret(entry.key) { continue }
                if let (s, i) = position(of: entry.key, in: sections) {
                    if sections[s].entries[i].value != entry.value {
                        let detected = sections[s].entries[i].value
                        sections[s].entries[i].note = detected.isEmpty ? "from .env.example" : "from .env.example (detected: \(detected))"
                    } else if sections[s].entries[i].note?.hasPrefix("not decided") == true {
                        sections[s].entries[i].note = "from .env.example"
                    }
                    sections[s].entries[i].value = entry.value
                } else if !extra.contains(where: { $0.key == entry.key }) {
                    extra.append(Entry(key: entry.key, value: entry.value, note: nil, isSecret: false))
                }
            }
            if !extra.isEmpty { sections.append(Section(title: "From .env.example", entries: extra)) }
            // An empty VALKEY_PASSWORD in the template means Valkey runs without one.
            if let v = template.entry(for: "VALKEY_PASSWORD"), v.value.isEmpty, let (s, i) = position(of: "VALKEY_PASSWORD", in: sections) {
                sections[s].entries[i].isSecret = false; sections[s].entries[i].note = "from .env.example: no password"
            }
        }

        // Passwords: kept from the current .env (--force), else random.
        var secrets: [String] = []
        for s in sections.indices {
            for i in sections[s].entries.indices where sections[s].entries[i].isSecret {
                let key = sections[s].entries[i].key
                let kept = existing?.entry(for: key)?.value
                let value = kept.flatMap { $0.isEmpty ? nil : $0 } ?? randomPassword()
                sections[s].entries[i].value = value
                if kept != nil { sections[s].entries[i].note = "kept from the previous .env" }
                secrets.append(value)
            }
        }
        // Keys of the current .env that sagedev does not own (application secrets and the like) are kept.
        if let existing {
            var kept: [Entry] = []
            for entry in existing.entries where (ConfigKey.named(entry.key).map(\.isPassthroughExample) ?? true)
                && position(of: entry.key, in: sections) == nil
                && !kept.contains(where: { $0.key == entry.key }) {
                kept.append(Entry(key: entry.key, value: entry.value, note: nil, isSecret: true))
                if !entry.value.isEmpty { secrets.append(entry.value) }
            }
            if !kept.isEmpty { sections.append(Section(title: "Kept from the previous .env", entries: kept)) }
        }

        let header = """
            # sagedev configuration for \(name), written by `sagedev init`.
            # This file holds this machine's passwords: keep it out of git (.gitignore lists it). .env.example is the
            # same without them. Values follow Docker Compose's .env rules; the process environment overrides this file.
            """
        let exampleHeader = """
            # sagedev configuration for \(name): copy to .env (or run `sagedev init`, which writes random passwords).
            # Values follow Docker Compose's .env rules; the process environment overrides this file.
            """
        return InitFiles(env: render(header, sections, example: false), envExample: render(exampleHeader, sections, example: true),
                         secrets: secrets)
    }

    static func position(of key: String, in sections: [Section]) -> (Int, Int)? {
        for (s, section) in sections.enumerated() {
            if let i = section.entries.firstIndex(where: { $0.key == key }) { return (s, i) }
        }
        return nil
    }

    static func render(_ header: String, _ sections: [Section], example: Bool) -> String {
        var out = header + "\n"
        for section in sections where !section.entries.isEmpty {
            out += "\n# \(section.title)\n"
            for entry in section.entries {
                if let note = entry.note, !(example && note.hasPrefix("kept")) { out += "# \(note)\n" }
                if example && entry.isSecret {
                    if let placeholder = ConfigKey.named(entry.key)?.example {
                        out += "\(entry.key)=\(quote(placeholder))\n"
                    } else {
                        out += "# \(entry.key)=\n"
                    }
                } else {
                    out += "\(entry.key)=\(quote(entry.value))\n"
                }
            }
        }
        return out
    }

    public static func quote(_ value: String) -> String { DotEnv.quote(value) }

    /// Random letters and digits: safe in a connection URL, so the compose runtime accepts them too.
    public static func randomPassword(length: Int = 32) -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var g = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(g.next(upperBound: UInt64(alphabet.count)))] })
    }

    /// The entries `.gitignore` lacks of `.env` and `.sagedev/` (either spelling counts as present).
    public static func gitignoreAdditions(_ current: String) -> [String] {
        let lines = Set(current.split(separator: "\n").map { $0.trimmedOf(" \t\r") })
        let wanted: [(String, [String])] = [(".env", [".env", "/.env"]), (".sagedev/", [".sagedev", ".sagedev/", "/.sagedev", "/.sagedev/"])]
        return wanted.filter { w in !w.1.contains { lines.contains($0) } }.map(\.0)
    }
}

extension Substring {
    func trimmedOf(_ set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
