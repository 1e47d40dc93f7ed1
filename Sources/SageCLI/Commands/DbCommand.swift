import Foundation
import SageCore
import SageSystem

struct DbCommand: Command {
    static let name = "db"
    static let summary = "Database snapshots and backups: snapshot, restore, snapshots, drop-snapshot, backup, restore-backup."
    static let arguments = "<subcommand> [NAME|FILE]"
    static let options = [
        OptionSpec("--yes", short: "y", help: "Do not ask before restore and restore-backup replace the database."),
        OptionSpec("--keep-cache", help: "restore, restore-backup: do not flush Valkey."),
        OptionSpec("--json", help: "snapshots: print the list as JSON."),
        OptionSpec.timeout(default: 1800),
    ]
    static let discussion = """
        SUBCOMMANDS:
          snapshot NAME        Copy the database into snapshot NAME (CREATE DATABASE … TEMPLATE, milliseconds).
          restore NAME         Replace the database with a copy of snapshot NAME (the backend is stopped meanwhile).
          snapshots            List the snapshots, with the automatic ones 'sagedev migrate' takes.
          drop-snapshot NAME   Delete snapshot NAME.
          backup               Write a gzip-compressed pg_dump to .sagedev/backups/backup_YYYYMMDD_HHMMSS.sql.gz (keeps the newest 7).
          restore-backup FILE  Replace the database with the contents of a backup.
        """
    static let subcommands: [String: Int] = ["snapshot": 1, "restore": 1, "snapshots": 0, "drop-snapshot": 1, "backup": 0, "restore-backup": 1]

    let subcommand: String
    let argument: String?
    let yes: Bool, keepCache: Bool, json: Bool
    let timeout: Double

    init(parsing p: ParsedArguments) throws {
        guard let sub = p.positionals.first else {
            throw CLIError.usage("a subcommand is required: \(DbCommand.subcommands.keys.sorted().joined(separator: ", "))")
        }
        guard let count = DbCommand.subcommands[sub] else {
            let hint = Suggestion.closest(to: sub, among: Array(DbCommand.subcommands.keys)).map { "; did you mean '\($0)'?" } ?? ""
            throw CLIError.usage("unknown subcommand '\(sub)'\(hint) (subcommands: \(DbCommand.subcommands.keys.sorted().joined(separator: ", ")))")
        }
        let rest = Array(p.positionals.dropFirst())
        if rest.count != count {
            let what = sub == "restore-backup" ? "FILE" : "NAME"
            throw CLIError.usage(count == 0 ? "'db \(sub)' takes no argument" : (rest.isEmpty ? "'db \(sub)' needs a \(what)" : "'db \(sub)' takes one \(what)"))
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
