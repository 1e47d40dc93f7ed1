import Foundation
import Testing
import SageSystem
import SageCore

/// A repository to adopt, as files (path → contents), written into a fresh temporary directory named `name`
/// (the project name init derives comes from it).
struct FixtureRepository {
    var name: String
    var files: [String: String]

    /// Writes the fixture; returns its root.
    func write() throws -> String {
        let parent = makeTempDirectory("sagedev-init")
        let root = parent + "/" + name
        try FileDescriptor.makeDirectories(root)
        for (path, text) in files {
            if let slash = path.lastIndex(of: "/") { try FileDescriptor.makeDirectories(root + "/" + path[..<slash]) }
            try FileDescriptor.writeFileAtomically(root + "/" + path, Array(text.utf8))
        }
        return root
    }

    /// Shaped like the Sage app: a pnpm monorepo with a Nest backend using Prisma and a Vite frontend.
    static let pnpmMonorepo = FixtureRepository(name: "sage-monorepo", files: [
        "package.json": #"{ "name": "sage", "private": true, "scripts": { "dev": "pnpm -r --parallel dev" } }"#,
        "pnpm-workspace.yaml": "packages:\n  - apps/*\n",
        "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
        "apps/backend/package.json": #"""
            { "name": "backend", "scripts": { "build": "nest build", "start:dev": "nest start --watch" },
              "dependencies": { "@nestjs/core": "^10.3.0", "@prisma/client": "^5.10.0" },
              "devDependencies": { "prisma": "^5.10.0", "esbuild": "^0.20.0" },
              "prisma": { "seed": "ts-node prisma/seed.ts" } }
            """#,
        "apps/backend/prisma/schema.prisma": "datasource db {\n  provider = \"postgresql\"\n  url = env(\"DATABASE_URL\")\n}\n",
        "apps/frontend/package.json": #"{ "name": "frontend", "scripts": { "dev": "vite", "build": "vite build" }, "devDependencies": { "vite": "^5.1.0" } }"#,
    ])

    /// An npm Express app at the root, with SQL migrations.
    static let npmExpress = FixtureRepository(name: "express-api", files: [
        "package.json": #"{ "name": "express-api", "scripts": { "dev": "node --watch server.js" }, "dependencies": { "express": "^4.19.0" } }"#,
        "package-lock.json": "{ \"lockfileVersion\": 3 }\n",
        "db/migrations/001_users.sql": "CREATE TABLE users (id serial PRIMARY KEY);\n",
        "db/migrations/002_posts.sql": "CREATE TABLE posts (id serial PRIMARY KEY);\n",
    ])

    /// A yarn app in server/ + client/: Fastify and Next.js, Supabase-style SQL.
    static let yarnApp = FixtureRepository(name: "yarn-shop", files: [
        "package.json": #"{ "name": "shop", "private": true, "workspaces": ["server", "client"] }"#,
        "yarn.lock": "# yarn lockfile v1\n",
        "server/package.json": #"{ "name": "server", "scripts": { "dev": "tsx watch src/main.ts" }, "dependencies": { "fastify": "^4.26.0" } }"#,
        "client/package.json": #"{ "name": "client", "scripts": { "dev": "next dev" }, "dependencies": { "next": "^14.1.0" } }"#,
        "supabase/migrations/20240101000000_init.sql": "CREATE TABLE items (id bigint PRIMARY KEY);\n",
        "supabase/seed.sql": "INSERT INTO items VALUES (1);\n",
        ".gitignore": "node_modules\n.env\n",
    ])

    /// Not an app at all.
    static let noApp = FixtureRepository(name: "notes", files: ["README.md": "# Notes\n", "docs/index.md": "hello\n"])
}

/// `sagedev init` on fixture repositories, through the real binary: the exact `.env` (golden, passwords masked) and
/// messages, permissions, .gitignore, refusal and --force, and that the loader accepts what it writes.
@Suite struct InitCommandTests {
    func sagedev(_ args: [String], in dir: String, environment extra: [String: String] = [:]) throws -> CompletedProcess {
        var env = ProcessEnvironment.current()
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "SAGEDEV_PROJECT_DIR")
        for (k, v) in extra { env[k] = v }
        return try Subprocess.run([SagedevBinary.path] + args, environment: env, workingDirectory: dir, deadline: .after(seconds: 60))
    }

    /// The .env with its two random passwords replaced by <random>, and the passwords.
    func masked(_ env: String) -> (text: String, passwords: [String]) {
        var passwords: [String] = []
        let lines = env.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            for key in ["POSTGRES_PASSWORD=", "VALKEY_PASSWORD="] where line.hasPrefix(key) {
                passwords.append(String(line.dropFirst(key.count)))
                return key + "<random>"
            }
            return String(line)
        }
        return (lines.joined(separator: "\n"), passwords)
    }

    func read(_ path: String) -> String { FileDescriptor.readText(path) ?? "<missing \(path)>" }

    @Test func pnpmMonorepoLikeSage() throws {
        let root = try FixtureRepository.pnpmMonorepo.write()
        defer { removeTree(root) }
        let r = try sagedev(["init"], in: root)
        #expect(r.status == .exited(0), "\(r.stderrText)")
        #expect(r.stdoutText == """
            backend: apps/backend (package.json depends on @nestjs/core; pnpm from pnpm-lock.yaml)
              dev command: pnpm run start:dev (the start:dev script)
              install command: pnpm install --frozen-lockfile
            frontend: apps/frontend (package.json depends on vite; pnpm from pnpm-lock.yaml)
              dev command: pnpm run dev --host "$HOST" --port "$PORT" --strictPort (the dev script, with --host $HOST --port $PORT --strictPort: Vite ignores PORT and HOST, may bind ::1 only, and moves to another port without --strictPort)
              install command: pnpm install --frozen-lockfile
            SAGEDEV_MIGRATE_COMMAND: pnpm prisma migrate deploy (apps/backend/prisma/schema.prisma exists)
            SAGEDEV_SEED_COMMAND: pnpm prisma db seed (prisma.seed in apps/backend/package.json)
            not decided:
              BACKEND_HEALTH_PATH: assumed /health; set it to a path the backend answers with 2xx or 3xx once it is up
            wrote .env (mode 0600, random passwords), .env.example, .gitignore (+ .env, .sagedev/)
            next: sagedev toolchain install (once per user), then sagedev up

            """)
        #expect(r.stderrText == "")
        let env = masked(read(root + "/.env"))
        #expect(env.text == """
            # sagedev configuration for sage-monorepo, written by `sagedev init`.
            # This file holds this machine's passwords: keep it out of git (.gitignore lists it). .env.example is the
            # same without them. Values follow Docker Compose's .env rules; the process environment overrides this file.

            # Project
            SAGEDEV_PROJECT=sage-monorepo
            SAGEDEV_RUNTIME=auto

            # PostgreSQL 18
            POSTGRES_USER=sage-monorepo
            POSTGRES_PASSWORD=<random>
            POSTGRES_DB=sage-monorepo
            POSTGRES_PORT=5432

            # Valkey 8
            VALKEY_PASSWORD=<random>
            VALKEY_PORT=6379

            # Backend: apps/backend (package.json depends on @nestjs/core; pnpm from pnpm-lock.yaml)
            BACKEND_DIR=apps/backend
            BACKEND_DEV_COMMAND="pnpm run start:dev"
            BACKEND_INSTALL_COMMAND="pnpm install --frozen-lockfile"
            BACKEND_PORT=3000
            # not decided: assumed /health; set it to a path the backend answers with 2xx or 3xx once it is up
            BACKEND_HEALTH_PATH=/health

            # Frontend: apps/frontend (package.json depends on vite; pnpm from pnpm-lock.yaml)
            FRONTEND_DIR=apps/frontend
            FRONTEND_DEV_COMMAND='pnpm run dev --host "$HOST" --port "$PORT" --strictPort'
            FRONTEND_INSTALL_COMMAND="pnpm install --frozen-lockfile"
            FRONTEND_PORT=5173
            FRONTEND_HEALTH_PATH=/

            # Migrations and seeds
            SAGEDEV_MIGRATE_COMMAND="pnpm prisma migrate deploy"
            SAGEDEV_SEED_COMMAND="pnpm prisma db seed"

            """)
        #expect(env.passwords.count == 2 && env.passwords.allSatisfy { $0.count == 32 } && env.passwords[0] != env.passwords[1])
        let example = read(root + "/.env.example")
        #expect(example.contains("POSTGRES_PASSWORD=change-me-postgres\n") && example.contains("VALKEY_PASSWORD=change-me-valkey\n"))
        #expect(!env.passwords.contains { example.contains($0) }, "no secret in .env.example")
    }

    @Test func npmExpressAppAtTheRootWithSQLMigrations() throws {
        let root = try FixtureRepository.npmExpress.write()
        defer { removeTree(root) }
        let r = try sagedev(["init"], in: root)
        #expect(r.status == .exited(0), "\(r.stderrText)")
        #expect(r.stdoutText == """
            backend: . (package.json depends on express; npm from package-lock.json)
              dev command: npm run dev (the dev script)
              install command: npm ci
            SAGEDEV_MIGRATIONS_DIR: db/migrations (2 .sql files in db/migrations/)
            not decided:
              BACKEND_HEALTH_PATH: assumed /health; set it to a path the backend answers with 2xx or 3xx once it is up
              FRONTEND_DIR: no frontend found (a package.json depending on vite, esbuild, next, @angular/cli); set FRONTEND_DIR and FRONTEND_DEV_COMMAND
            wrote .env (mode 0600, random passwords), .env.example, .gitignore (+ .env, .sagedev/)
            next: sagedev toolchain install (once per user), then sagedev up

            """)
        #expect(masked(read(root + "/.env")).text == """
            # sagedev configuration for express-api, written by `sagedev init`.
            # This file holds this machine's passwords: keep it out of git (.gitignore lists it). .env.example is the
            # same without them. Values follow Docker Compose's .env rules; the process environment overrides this file.

            # Project
            SAGEDEV_PROJECT=express-api
            SAGEDEV_RUNTIME=auto

            # PostgreSQL 18
            POSTGRES_USER=express-api
            POSTGRES_PASSWORD=<random>
            POSTGRES_DB=express-api
            POSTGRES_PORT=5432

            # Valkey 8
            VALKEY_PASSWORD=<random>
            VALKEY_PORT=6379

            # Backend: . (package.json depends on express; npm from package-lock.json)
            BACKEND_DIR=.
            BACKEND_DEV_COMMAND="npm run dev"
            BACKEND_INSTALL_COMMAND="npm ci"
            BACKEND_PORT=3000
            # not decided: assumed /health; set it to a path the backend answers with 2xx or 3xx once it is up
            BACKEND_HEALTH_PATH=/health

            # Frontend: none found
            # not decided: no frontend found (a package.json depending on vite, esbuild, next, @angular/cli); set FRONTEND_DIR and FRONTEND_DEV_COMMAND
            FRONTEND_DIR=
            FRONTEND_DEV_COMMAND=

            # Migrations and seeds
            SAGEDEV_MIGRATIONS_DIR=db/migrations

            """)
    }

    @Test func yarnAppInServerAndClient() throws {
        let root = try FixtureRepository.yarnApp.write()
        defer { removeTree(root) }
        let r = try sagedev(["init"], in: root)
        #expect(r.status == .exited(0), "\(r.stderrText)")
        #expect(r.stdoutText == """
            backend: server (package.json depends on fastify; yarn from yarn.lock)
              dev command: yarn run dev (the dev script)
              install command: yarn install --frozen-lockfile
            frontend: client (package.json depends on next; yarn from yarn.lock)
              dev command: yarn run dev --hostname "$HOST" --port "$PORT" (the dev script, with --hostname $HOST --port $PORT: next dev binds every address unless told the host)
              install command: yarn install --frozen-lockfile
            SAGEDEV_MIGRATIONS_DIR: supabase/migrations (1 .sql file in supabase/migrations/)
            SAGEDEV_SEEDS_DIR: supabase (supabase/seed.sql exists (the .sql files directly in supabase/ are applied))
            not decided:
              BACKEND_HEALTH_PATH: assumed /health; set it to a path the backend answers with 2xx or 3xx once it is up
            wrote .env (mode 0600, random passwords), .env.example, .gitignore (+ .sagedev/)
            next: sagedev toolchain install (once per user), then sagedev up

            """)
        let env = masked(read(root + "/.env")).text
        #expect(env.contains("""
            # Backend: server (package.json depends on fastify; yarn from yarn.lock)
            BACKEND_DIR=server
            BACKEND_DEV_COMMAND="yarn run dev"
            BACKEND_INSTALL_COMMAND="yarn install --frozen-lockfile"
            """))
        #expect(env.contains("""
            # Frontend: client (package.json depends on next; yarn from yarn.lock)
            FRONTEND_DIR=client
            FRONTEND_DEV_COMMAND='yarn run dev --hostname "$HOST" --port "$PORT"'
            FRONTEND_INSTALL_COMMAND="yarn install --frozen-lockfile"
            """))
        #expect(env.hasSuffix("""
            # Migrations and seeds
            SAGEDEV_MIGRATIONS_DIR=supabase/migrations
            SAGEDEV_SEEDS_DIR=supabase

            """))
        // .gitignore had .env already: it gains only .sagedev/.
        #expect(read(root + "/.gitignore") == "node_modules\n.env\n.sagedev/\n")
    }

    @Test func aDirectoryWithoutAnAppGetsAClearMessageAndNoEnv() throws {
        let root = try FixtureRepository.noApp.write()
        defer { removeTree(root) }
        let r = try sagedev(["init"], in: root)
        #expect(r.status == .exited(1))
        #expect(r.stdoutText == "")
        #expect(r.stderrText.hasPrefix("sagedev init: no app found in \(root): sagedev looks for a package.json depending on @nestjs/core, express, fastify, koa (a backend) or vite, esbuild, next, @angular/cli (a frontend), in apps/*, packages/*, backend/, frontend/, server/, client/, the root. Nothing was written."), "\(r.stderrText)")
        #expect(FileTree.list(root) == ["README.md", "docs"])
    }

    @Test func initTwiceRefusesAndChangesNothing() throws {
        let root = try FixtureRepository.npmExpress.write()
        defer { removeTree(root) }
        #expect(try sagedev(["init"], in: root).status == .exited(0))
        let before = read(root + "/.env"), gitignore = read(root + "/.gitignore")
        let r = try sagedev(["init"], in: root)
        #expect(r.status == .exited(1))
        #expect(r.stderrText.contains("\(root)/.env already exists; nothing was changed. Run 'sagedev init --force'"), "\(r.stderrText)")
        #expect(read(root + "/.env") == before && read(root + "/.gitignore") == gitignore)
    }

    @Test func forceRewritesButKeepsThePasswordsAndOwnKeys() throws {
        let root = try FixtureRepository.pnpmMonorepo.write()
        defer { removeTree(root) }
        #expect(try sagedev(["init"], in: root).status == .exited(0))
        let first = masked(read(root + "/.env"))
        // A key of the team's own, added by hand, survives too.
        try FileDescriptor.writeFileAtomically(root + "/.env", Array((read(root + "/.env") + "ANTHROPIC_API_KEY=sk-ant-kept\n").utf8), mode: 0o600)
        let r = try sagedev(["init", "--force"], in: root)
        #expect(r.status == .exited(0), "\(r.stderrText)")
        #expect(r.stdoutText.contains(".env.example: the values it sets win over what was detected"), "\(r.stdoutText)")
        #expect(r.stdoutText.contains("wrote .env (mode 0600, passwords kept)\n"), "\(r.stdoutText)")
        let second = masked(read(root + "/.env"))
        #expect(second.passwords == first.passwords)
        #expect(second.text.contains("ANTHROPIC_API_KEY=sk-ant-kept\n"))
        #expect(!r.stdoutText.contains("sk-ant-kept") && !first.passwords.contains { r.stdoutText.contains($0) })
    }

    @Test func envIsMode0600AndGitignoreGainsEachEntryOnce() throws {
        let root = try FixtureRepository.npmExpress.write()
        defer { removeTree(root) }
        #expect(try sagedev(["init"], in: root).status == .exited(0))
        #expect(try sagedev(["init", "--force"], in: root).status == .exited(0))
        #expect(FileTree.mode(root + "/.env") == 0o600)
        #expect(read(root + "/.gitignore") == ".env\n.sagedev/\n")
    }

    @Test func dryRunPrintsTheFilesWithoutPasswordsAndWritesNothing() throws {
        let root = try FixtureRepository.pnpmMonorepo.write()
        defer { removeTree(root) }
        let r = try sagedev(["init", "--dry-run", "--onboarding-script"], in: root)
        #expect(r.status == .exited(0), "\(r.stderrText)")
        #expect(r.stdoutText.contains("would write \(root)/.env (mode 0600):\n# sagedev configuration for sage-monorepo"))
        #expect(r.stdoutText.contains("POSTGRES_PASSWORD=****\n") && r.stdoutText.contains("VALKEY_PASSWORD=****\n"))
        #expect(r.stdoutText.contains("would write \(root)/.env.example:\n") && r.stdoutText.contains("would add to \(root)/.gitignore: .env .sagedev/"))
        #expect(r.stdoutText.contains("would write \(root)/scripts/dev-setup.sh (mode 0755):\n#!/usr/bin/env bash"))
        #expect(!FileDescriptor.exists(root + "/.env") && !FileDescriptor.exists(root + "/.env.example") && !FileDescriptor.exists(root + "/scripts"))
    }

    @Test func onboardingScriptIsWrittenExecutableAndParses() throws {
        let root = try FixtureRepository.pnpmMonorepo.write()
        defer { removeTree(root) }
        let r = try sagedev(["init", "--onboarding-script"], in: root)
        #expect(r.status == .exited(0), "\(r.stderrText)")
        let script = root + "/scripts/dev-setup.sh"
        #expect(FileTree.mode(script) == 0o755)
        #expect(read(script) == OnboardingScript.text)
        let syntax = try Subprocess.run(["bash", "-n", script], deadline: .after(seconds: 10))
        #expect(syntax.status == .exited(0), "\(syntax.stderrText)")
        for step in ["sagedev toolchain install", "sagedev init", "sagedev doctor", "sagedev up", "sagedev wait"] {
            #expect(read(script).contains(step))
        }
    }

    /// What init writes is what the current loader reads: no error and no warning, with the detected values.
    @Test(arguments: [FixtureRepository.pnpmMonorepo, .npmExpress, .yarnApp])
    func generatedEnvLoadsWithConfigLoader(_ fixture: FixtureRepository) throws {
        let root = try fixture.write()
        defer { removeTree(root) }
        #expect(try sagedev(["init"], in: root).status == .exited(0))
        let report = ConfigLoader.check(projectDirectory: root, environment: [:])
        #expect(report.issues.isEmpty, "\(report.issues)")
        let config = try #require(report.config)
        #expect(config.projectName == fixture.name)
        #expect(config.postgres.password.count == 32 && config.valkey.password.count == 32)
        if fixture.name == "sage-monorepo" {
            #expect(config.frontend.devCommand == #"pnpm run dev --host "$HOST" --port "$PORT" --strictPort"#)
            #expect(config.backend.directory == "apps/backend")
        }
    }
}

extension FixtureRepository: CustomTestStringConvertible {
    var testDescription: String { name }
}
