import Foundation
import SageCore
import SageSystem

struct DbCommand: Command {
    static let name = "db"
    static let summary = "Snapshots, clones and backups: snapshot, restore, snapshots, drop-snapshot, clone, clones, drop-clone, backup, restore-backup."
    static let arguments = "<subcommand> [NAME|FILE]"
    static let options = [
        OptionSpec("--yes", short: "y", help: "Do not ask before restore and restore-backup replace the database."),
        OptionSpec("--keep-cache", help: "restore, restore-backup: do not flush Valkey."),
        OptionSpec("--json", help: "snapshots, clone, clones: print JSON (clone: its url holds the password when stdout is not a terminal)."),
        OptionSpec("--all", help: "drop-clone: drop every clone."),
        OptionSpec.timeout(default: 1800),
    ]
    static let discussion = """
        SUBCOMMANDS:
          snapshot NAME        Copy the database into snapshot NAME (CREATE DATABASE … TEMPLATE, milliseconds).
          restore NAME         Replace the database with a copy of snapshot NAME (the backend is stopped meanwhile).
          snapshots            List the snapshots, with the automatic ones 'sagedev migrate' takes.
          drop-snapshot NAME   Delete snapshot NAME.
          clone [NAME]         Make database <db>__clone_NAME from the template (a ready copy: milliseconds) and print its
                               URL; NAME (lower-case letters, digits, '-', '_') is made up when left out. For a database
                               per test or test worker: DATABASE_URL=$(sagedev db clone --json | jq -r .url)
          clones               List the clones.
          drop-clone NAME|--all  Delete one clone, or all of them ('sagedev down --volumes' deletes them too).
          backup               Write a gzip-compressed pg_dump to .sagedev/backups/backup_YYYYMMDD_HHMMSS.sql.gz (keeps the newest 7).
          restore-backup FILE  Replace the database with the contents of a backup.
        """
    /// How many arguments each subcommand takes.
    static let subcommands: [String: ClosedRange<Int>] = ["snapshot": 1...1, "restore": 1...1, "snapshots": 0...0, "drop-snapshot": 1...1,
                                                         "clone": 0...1, "clones": 0...0, "drop-clone": 0...1,
                                                         "backup": 0...0, "restore-backup": 1...1]

    let subcommand: String
    let argument: String?
    let yes: Bool, keepCache: Bool, json: Bool, all: Bool
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        guard let sub = p.positionals.first else {
            throw CLIError.usage("a subcommand is required: \(DbCommand.subcommands.keys.sorted().joined(separator: ", "))")
        }
        guard let counts = DbCommand.subcommands[sub] else {
            let hint = Suggestion.closest(to: sub, among: Array(DbCommand.subcommands.keys)).map { "; did you mean '\($0)'?" } ?? ""
            throw CLIError.usage("unknown subcommand '\(sub)'\(hint) (subcommands: \(DbCommand.subcommands.keys.sorted().joined(separator: ", ")))")
        }
        let rest = Array(p.positionals.dropFirst())
        if !counts.contains(rest.count) {
            let what = sub == "restore-backup" ? "FILE" : "NAME"
            throw CLIError.usage(counts.upperBound == 0 ? "'db \(sub)' takes no argument" : (rest.isEmpty ? "'db \(sub)' needs a \(what)" : "'db \(sub)' takes one \(what)"))
        }
        all = p.has("--all")
        if sub == "drop-clone" && (rest.isEmpty != all) {
            throw CLIError.usage(all ? "'db drop-clone' takes a NAME or --all, not both" : "'db drop-clone' needs a NAME, or --all")
        }
        subcommand = sub; argument = rest.first
        yes = p.has("--yes"); keepCache = p.has("--keep-cache"); json = p.has("--json")
        timeout = try p.timeout(default: 1800)
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let out = context.output
        let total: (DatabaseReport) -> String = { DatabaseStep.format($0.totalMs) }
        switch subcommand {
        case "snapshot":
            guard let r = try DatabaseCLI.request(context, SnapshotRequest(name: argument!), timeout: timeout) else { return ExitCode.failure }
            out.line("Snapshot \(argument!) taken in \(total(r)).")
        case "restore":
            guard try DatabaseCLI.confirm(context, yes: yes, question: "Replace the database with snapshot \(argument!)? Its current data will be lost.",
                                          flagHint: "restore replaces the database's data") else { return ExitCode.failure }
            guard let r = try DatabaseCLI.request(context, RestoreSnapshotRequest(name: argument!, keepCache: keepCache), timeout: timeout) else { return ExitCode.failure }
            out.line("Restored snapshot \(argument!) in \(total(r)).")
        case "snapshots":
            guard let r = try DatabaseCLI.request(context, ListSnapshotsRequest(), timeout: timeout) else { return ExitCode.failure }
            let list = r.snapshots
            if json { try DatabaseCLI.printJSON(out, r); return ExitCode.success }
            if list.isEmpty { out.line("No snapshots. Take one with 'sagedev db snapshot NAME'."); return ExitCode.success }
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            var rows = [["NAME", "KIND", "CREATED", "SIZE"]]
            for s in list {
                rows.append([s.name, s.kind, s.created > 0 ? f.string(from: Date(timeIntervalSince1970: s.created)) : "?",
                             formatSize(s.bytes)])
            }
            let widths = (0..<4).map { i in rows.map { $0[i].count }.max() ?? 0 }
            for row in rows { out.line(zip(row, widths).map { $0.padding($1 + 1) }.joined(separator: " ")) }
        case "drop-snapshot":
            guard let r = try DatabaseCLI.request(context, DropSnapshotRequest(name: argument!), timeout: timeout) else { return ExitCode.failure }
            out.line("Dropped snapshot \(argument!) in \(total(r)).")
        case "clone":
            guard let r = try DatabaseCLI.request(context, CloneRequest(name: argument), timeout: timeout, quiet: json) else { return ExitCode.failure }
            // The URL carries the password for the program reading it; a person at a terminal sees it redacted.
            let url = (out.isTTY ? r.redactedUrl : r.url) ?? ""
            if json {
                try DatabaseCLI.printJSON(out, CloneOutput(name: r.name ?? "", database: r.database ?? "", url: url,
                                                           source: r.source ?? "", totalMs: r.totalMs))
            } else {
                out.line("Clone \(r.name ?? "") (database \(r.database ?? "")) made in \(total(r)) from \(r.source == "ready copy" ? "a ready copy of the template" : "the template"):")
                out.line(url)
            }
        case "clones":
            guard let r = try DatabaseCLI.request(context, ListClonesRequest(), timeout: timeout) else { return ExitCode.failure }
            if json { try DatabaseCLI.printJSON(out, r); return ExitCode.success }
            if r.clones.isEmpty { out.line("No clones. Make one with 'sagedev db clone [NAME]'."); return ExitCode.success }
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            var rows = [["NAME", "DATABASE", "CREATED", "SIZE"]]
            for c in r.clones {
                rows.append([c.name, c.database, c.created > 0 ? f.string(from: Date(timeIntervalSince1970: c.created)) : "?", formatSize(c.bytes)])
            }
            let widths = (0..<4).map { i in rows.map { $0[i].count }.max() ?? 0 }
            for row in rows { out.line(zip(row, widths).map { $0.padding($1 + 1) }.joined(separator: " ")) }
        case "drop-clone":
            guard let r = try DatabaseCLI.request(context, DropCloneRequest(name: argument, all: all), timeout: timeout) else { return ExitCode.failure }
            let dropped = r.dropped ?? []
            out.line(all ? "Dropped \(dropped.count) clone\(dropped.count == 1 ? "" : "s") in \(total(r))." : "Dropped clone \(argument!) in \(total(r)).")
        case "backup":
            guard let r = try DatabaseCLI.request(context, BackupRequest(), timeout: timeout) else { return ExitCode.failure }
            out.line("Backup written to \(r.file ?? "?") in \(total(r)).")
        case "restore-backup":
            var file = argument!
            if !file.hasPrefix("/") {
                let local = context.workingDirectory + "/" + file
                if FileDescriptor.exists(local) { file = local }
            }
            guard try DatabaseCLI.confirm(context, yes: yes, question: "Replace the database with the contents of \(argument!)? Its current data will be lost.",
                                          flagHint: "restore-backup replaces the database's data") else { return ExitCode.failure }
            guard let r = try DatabaseCLI.request(context, RestoreBackupRequest(file: file, keepCache: keepCache), timeout: timeout) else { return ExitCode.failure }
            out.line("Restored \(r.file ?? file) in \(total(r)).")
        default:
            throw CLIError.usage("unknown subcommand '\(subcommand)'")
        }
        return ExitCode.success
    }

    func formatSize(_ n: Int) -> String {
        n < 1048576 ? "\(n / 1024) KiB" : "\((Double(n) / 1048576 * 10).rounded() / 10) MiB"
    }
}

/// `db clone --json`: what a test runner needs, `url` first among them.
struct CloneOutput: Encodable {
    var name: String
    var database: String
    var url: String
    var source: String
    var totalMs: Double
}
