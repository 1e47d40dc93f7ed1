import Foundation
import SageCore
import SageSystem
import SageWire

struct InitCommand: Command {
    static let name = "init"
    static let summary = "Write .env, .env.example and .gitignore entries for an existing repository, from what it finds there."
    static let arguments = "[DIR]"
    static let options = [
        OptionSpec("--dry-run", help: "Print the files it would write (passwords as ****), and write nothing."),
        OptionSpec("--force", help: "Rewrite an existing .env, keeping its passwords and the keys sagedev does not own."),
        OptionSpec("--onboarding-script", help: "Also write scripts/dev-setup.sh: installs sagedev and the toolchain, runs doctor, up and wait."),
    ]
    static let discussion = """
        Detects the backend (a package.json depending on @nestjs/core, express, fastify or koa) and the frontend (vite,
        esbuild, next, @angular/cli) in apps/*, packages/*, backend/ + frontend/, server/ + client/ or the root; the
        package manager from its lockfile; Prisma; and SQL directories (db/migrations, migrations, supabase/migrations,
        db/seeds, supabase/seed.sql). Keys a .env.example in the repository sets win over detection. Reports each
        decision and why, and what it could not decide with the key to set. .env is written with mode 0600 and random
        passwords. Exit 1 when .env exists (without --force) or no app is found; nothing is written then.
        """

    let directory: String?
    let dryRun: Bool, force: Bool, onboardingScript: Bool

    init(parsing p: ParsedArguments) throws {
        if p.positionals.count > 1 { throw CLIError.usage("init takes at most one DIR") }
        directory = p.positionals.first
        dryRun = p.has("--dry-run"); force = p.has("--force"); onboardingScript = p.has("--onboarding-script")
    }

    func run(_ context: CommandContext) throws -> Int32 {
        let out = context.output
        var root = directory.map { $0.hasPrefix("/") ? $0 : context.workingDirectory + "/" + $0 } ?? context.workingDirectory
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        if root.hasSuffix("/.") { root.removeLast(2) }
        guard FileDescriptor.isDirectory(root) else { throw CLIError(ExitCode.usage, "\(root) is not a directory") }

        let plan = ProjectScanner.scan(root)
        guard plan.foundAnyApp else {
            throw CLIError(ExitCode.failure, """
                no app found in \(root): sagedev looks for a package.json depending on \(frameworks(.backend)) (a backend) or \(frameworks(.frontend)) (a frontend), in \(layouts()). Nothing was written.
                Run it in the repository of your app, or write .env yourself from sagedev's env.example (BACKEND_DIR, FRONTEND_DIR and their _DEV_COMMAND).
                """)
        }
        let envPath = root + "/.env"
        let envExists = FileDescriptor.exists(envPath)
        if envExists && !force {
            throw CLIError(ExitCode.failure, "\(envPath) already exists; nothing was changed. Run 'sagedev init --force' to rewrite it (its passwords and your own keys are kept), or edit it.")
        }
        let existing = envExists ? FileDescriptor.readText(envPath).map { DotEnv.parse($0) } : nil
        let templateName = ConfigLoader.templateNames.first { FileDescriptor.exists(root + "/" + $0) }
        let templateText = templateName.flatMap { FileDescriptor.readText(root + "/" + $0) }
        let template = templateText.map { DotEnv.parse($0) }
        let files = InitFiles.make(plan: plan, existing: existing, template: template, randomPassword: { InitFiles.randomPassword() })
        let gitignorePath = root + "/.gitignore"
        let gitignore = FileDescriptor.readText(gitignorePath) ?? ""
        let additions = InitFiles.gitignoreAdditions(gitignore)
        let writeExample = templateName == nil
        let examplePath = root + "/.env.example"

        for line in plan.reportLines { out.line(line) }
        if let t = templateName { out.line("\(t): the values it sets win over what was detected (they are the team's choices); it is left as it is") }
        let templateKeys = Set(template?.entries.map(\.key) ?? [])
        let undecided = plan.undecided.filter { !templateKeys.contains($0.key) }
        if !undecided.isEmpty {
            out.line("not decided:")
            for u in undecided { out.line("  \(u.key): \(u.advice)") }
        }

        if dryRun {
            out.line("")
            out.line("would write \(envPath) (mode 0600):")
            out.write(redact(files.env, files.secrets))
            if writeExample { out.line(""); out.line("would write \(examplePath):"); out.write(files.envExample) }
            if !additions.isEmpty { out.line(""); out.line("would add to \(gitignorePath): \(additions.joined(separator: " "))") }
            if onboardingScript { out.line(""); out.line("would write \(root)/\(OnboardingScript.path) (mode 0755):"); out.write(OnboardingScript.text) }
            return ExitCode.success
        }

        var written: [String] = []
        do {
            try FileDescriptor.writeFileAtomically(envPath, Array(files.env.utf8), mode: 0o600)
            written.append(".env (mode 0600, \(existing == nil ? "random passwords" : "passwords kept"))")
            if writeExample {
                try FileDescriptor.writeFileAtomically(examplePath, Array(files.envExample.utf8), mode: 0o644)
                written.append(String(examplePath.dropFirst(root.count + 1)))
            }
            if !additions.isEmpty {
                let text = gitignore + (gitignore.isEmpty || gitignore.hasSuffix("\n") ? "" : "\n") + additions.map { $0 + "\n" }.joined()
                try FileDescriptor.writeFileAtomically(gitignorePath, Array(text.utf8), mode: FileTree.mode(gitignorePath).map { mode_t($0) } ?? 0o644)
                written.append(".gitignore (+ \(additions.joined(separator: ", ")))")
            }
            if onboardingScript {
                try FileDescriptor.makeDirectories(root + "/scripts", mode: 0o755)
                try FileDescriptor.writeFileAtomically(root + "/" + OnboardingScript.path, Array(OnboardingScript.text.utf8), mode: 0o755)
                written.append(OnboardingScript.path)
            }
        } catch {
            throw CLIError(ExitCode.failure, "could not write in \(root): \(error)")
        }
        out.line("wrote " + written.joined(separator: ", "))

        // What was written must load: report anything the loader says about it.
        let report = ConfigLoader.check(projectDirectory: root, environment: context.environment)
        for issue in report.issues { out.error((issue.isError ? "" : "warning: ") + issue.description) }
        if report.config == nil { return ExitCode.config }
        out.line("next: sagedev toolchain install (once per user), then sagedev up\(directory == nil ? "" : " in \(root)")")
        return ExitCode.success
    }

    func redact(_ text: String, _ secrets: [String]) -> String {
        var t = text
        for s in secrets.sorted(by: { $0.count > $1.count }) where !s.isEmpty { t = t.replacingOccurrences(of: s, with: "****") }
        return t
    }

    func frameworks(_ role: AppRole) -> String {
        FrameworkRule.all.filter { $0.role == role }.map(\.package).joined(separator: ", ")
    }

    func layouts() -> String {
        AppLayout.all.map { $0.path == "." ? "the root" : ($0.children ? "\($0.path)/*" : "\($0.path)/") }.joined(separator: ", ")
    }
}
