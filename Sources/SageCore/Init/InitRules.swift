/// What `sagedev init` recognises, as tables: a new framework, package manager, layout or SQL directory is one entry
/// here, and the scanner reads nothing else.
public enum AppRole: String, Sendable, Equatable { case backend, frontend }

/// A package manager, told by its lockfile.
public struct PackageManagerRule: Sendable, Equatable {
    public var name: String
    public var lockfiles: [String]
    /// Installs exactly what the lockfile says.
    public var install: String
    /// Runs a package.json script: "<run> dev".
    public var run: String
    /// What goes between the script and arguments meant for it ("--" for npm, nothing for the others).
    public var argumentSeparator: String
    /// Runs a dependency's binary ("npx prisma", "pnpm prisma").
    public var exec: String

    public static let all: [PackageManagerRule] = [
        PackageManagerRule(name: "pnpm", lockfiles: ["pnpm-lock.yaml"], install: "pnpm install --frozen-lockfile",
                           run: "pnpm run", argumentSeparator: "", exec: "pnpm"),
        PackageManagerRule(name: "yarn", lockfiles: ["yarn.lock"], install: "yarn install --frozen-lockfile",
                           run: "yarn run", argumentSeparator: "", exec: "yarn"),
        PackageManagerRule(name: "npm", lockfiles: ["package-lock.json"], install: "npm ci",
                           run: "npm run", argumentSeparator: "--", exec: "npx"),
        PackageManagerRule(name: "bun", lockfiles: ["bun.lock", "bun.lockb"], install: "bun install --frozen-lockfile",
                           run: "bun run", argumentSeparator: "", exec: "bunx"),
    ]

    /// No lockfile: npm, which writes one on its first install.
    public static let fallback = PackageManagerRule(name: "npm", lockfiles: [], install: "npm install --no-audit --no-fund",
                                                    run: "npm run", argumentSeparator: "--", exec: "npx")
}

/// A framework, told by a package.json dependency: the role it gives the app and how its dev server is run.
public struct FrameworkRule: Sendable, Equatable {
    public var package: String
    public var title: String
    public var role: AppRole
    /// package.json scripts tried in order for the dev command.
    public var devScripts: [String]
    /// Arguments the dev server needs to listen where sagedev probes it (sh expands $HOST and $PORT at run time).
    public var adapterArguments: String
    /// Why those arguments are there, for the report.
    public var adapterReason: String

    public static let all: [FrameworkRule] = [
        // Backends first: a backend often carries a bundler such as esbuild among its devDependencies.
        FrameworkRule(package: "@nestjs/core", title: "Nest", role: .backend, devScripts: ["start:dev", "dev"],
                      adapterArguments: "", adapterReason: ""),
        FrameworkRule(package: "express", title: "Express", role: .backend, devScripts: ["dev", "start:dev", "start"],
                      adapterArguments: "", adapterReason: ""),
        FrameworkRule(package: "fastify", title: "Fastify", role: .backend, devScripts: ["dev", "start:dev", "start"],
                      adapterArguments: "", adapterReason: ""),
        FrameworkRule(package: "koa", title: "Koa", role: .backend, devScripts: ["dev", "start:dev", "start"],
                      adapterArguments: "", adapterReason: ""),
        FrameworkRule(package: "vite", title: "Vite", role: .frontend, devScripts: ["dev", "start"],
                      adapterArguments: "--host \"$HOST\" --port \"$PORT\" --strictPort",
                      adapterReason: "Vite ignores PORT and HOST, may bind ::1 only, and moves to another port without --strictPort"),
        FrameworkRule(package: "esbuild", title: "esbuild", role: .frontend, devScripts: ["dev", "start", "serve"],
                      adapterArguments: "", adapterReason: ""),
        FrameworkRule(package: "next", title: "Next.js", role: .frontend, devScripts: ["dev"],
                      adapterArguments: "--hostname \"$HOST\" --port \"$PORT\"",
                      adapterReason: "next dev binds every address unless told the host"),
        FrameworkRule(package: "@angular/cli", title: "Angular", role: .frontend, devScripts: ["start", "dev"],
                      adapterArguments: "--host \"$HOST\" --port \"$PORT\"",
                      adapterReason: "ng serve ignores PORT"),
    ]
}

/// Without a known framework, a directory name still tells the role of an app that has a dev script.
public struct DirectoryNameRule: Sendable, Equatable {
    public var names: [String]
    public var role: AppRole
    public static let all: [DirectoryNameRule] = [
        DirectoryNameRule(names: ["backend", "server", "api"], role: .backend),
        DirectoryNameRule(names: ["frontend", "client", "web"], role: .frontend),
    ]
}

/// Where apps live in a repository, in the order they are looked for.
public struct AppLayout: Sendable, Equatable {
    /// A directory whose every child is a candidate ("apps"), or one directory ("backend", "." for the root).
    public var path: String
    public var children: Bool
    public static let all: [AppLayout] = [
        AppLayout(path: "apps", children: true),
        AppLayout(path: "packages", children: true),
        AppLayout(path: "backend", children: false),
        AppLayout(path: "frontend", children: false),
        AppLayout(path: "server", children: false),
        AppLayout(path: "client", children: false),
        AppLayout(path: ".", children: false),
    ]
}

/// SQL files sagedev applies itself, by where teams keep them.
public struct SQLDirectoryRule: Sendable, Equatable {
    /// A directory, or a single file whose directory then holds the SQL (supabase/seed.sql).
    public var path: String
    public var key: String
    public static let all: [SQLDirectoryRule] = [
        SQLDirectoryRule(path: "db/migrations", key: "SAGEDEV_MIGRATIONS_DIR"),
        SQLDirectoryRule(path: "migrations", key: "SAGEDEV_MIGRATIONS_DIR"),
        SQLDirectoryRule(path: "supabase/migrations", key: "SAGEDEV_MIGRATIONS_DIR"),
        SQLDirectoryRule(path: "db/seeds", key: "SAGEDEV_SEEDS_DIR"),
        SQLDirectoryRule(path: "supabase/seed.sql", key: "SAGEDEV_SEEDS_DIR"),
    ]
}

/// An ORM that migrates and seeds through its own commands.
public struct MigrationToolRule: Sendable, Equatable {
    public var title: String
    /// Present in the backend's directory.
    public var marker: String
    /// Run with the package manager's exec prefix.
    public var migrate: String
    /// A package.json entry (dotted path) that, when present, means the tool seeds too.
    public var seedEntry: String
    public var seed: String
    public static let all: [MigrationToolRule] = [
        MigrationToolRule(title: "Prisma", marker: "prisma/schema.prisma", migrate: "prisma migrate deploy",
                          seedEntry: "prisma.seed", seed: "prisma db seed"),
    ]
}
