import Testing
@testable import SageCore

@Suite struct ChangeClassifierTests {
    let layout = WatchLayout(backendDirectory: "/p/apps/backend", frontendDirectory: "/p/apps/frontend",
                             migrationsDirectory: "/p/db/migrations", seedsDirectory: "/p/db/seeds", envFile: "/p/.env")
    var classifier: ChangeClassifier { ChangeClassifier(layout: layout) }

    @Test func aSourceFileOfAServiceIsASourceChange() {
        #expect(classifier.classify(paths: ["/p/apps/backend/src/version.js"])
                == [.sourceChanged(.backend, file: "/p/apps/backend/src/version.js")])
        #expect(classifier.classify(paths: ["/p/apps/frontend/public/index.html"])
                == [.sourceChanged(.frontend, file: "/p/apps/frontend/public/index.html")])
    }

    @Test func oneActionPerServiceNamingTheFirstFile() {
        let batch = ["/p/apps/backend/src/a.js", "/p/apps/backend/src/b.js", "/p/apps/backend/src/c.js"]
        #expect(classifier.classify(paths: batch) == [.sourceChanged(.backend, file: "/p/apps/backend/src/a.js")])
    }

    @Test(arguments: ["package.json", "package-lock.json", "pnpm-lock.yaml", "yarn.lock", "npm-shrinkwrap.json"])
    func manifestsAndLockfilesAskForAnInstall(name: String) {
        #expect(classifier.classify(paths: ["/p/apps/backend/" + name])
                == [.manifestChanged(.backend, file: "/p/apps/backend/" + name)])
    }

    @Test func aManifestChangeWinsOverSourceChangesOfTheSameService() {
        let batch = ["/p/apps/backend/src/a.js", "/p/apps/backend/package.json", "/p/apps/backend/src/b.js",
                     "/p/apps/backend/package-lock.json"]
        #expect(classifier.classify(paths: batch) == [.manifestChanged(.backend, file: "/p/apps/backend/package.json")])
    }

    @Test func aWorkspacePackageManifestCounts() {
        #expect(classifier.classify(paths: ["/p/apps/frontend/packages/ui/package.json"])
                == [.manifestChanged(.frontend, file: "/p/apps/frontend/packages/ui/package.json")])
        #expect(classifier.classify(paths: ["/p/apps/frontend/src/package.json.bak"])
                == [.sourceChanged(.frontend, file: "/p/apps/frontend/src/package.json.bak")])
    }

    @Test func envMigrationsAndSeeds() {
        #expect(classifier.classify(paths: ["/p/.env"]) == [.envChanged])
        #expect(classifier.classify(paths: ["/p/db/migrations/004_tags.sql"]) == [.migrationsChanged(file: "/p/db/migrations/004_tags.sql")])
        #expect(classifier.classify(paths: ["/p/db/seeds/001_users.sql", "/p/db/seeds/002_chats.sql"])
                == [.seedsChanged(file: "/p/db/seeds/001_users.sql")])
        #expect(classifier.classify(paths: ["/p/.env.local", "/p/.envrc"]) == [], "only .env itself")
    }

    @Test func aMixedBatchComesOutInTheOrderTheEngineApplies() {
        let batch = ["/p/apps/frontend/src/main.ts", "/p/db/seeds/001_users.sql", "/p/apps/backend/src/x.js",
                     "/p/.env", "/p/db/migrations/001_users.sql", "/p/apps/backend/package.json", "/p/.env"]
        #expect(classifier.classify(paths: batch) == [
            .envChanged,
            .migrationsChanged(file: "/p/db/migrations/001_users.sql"),
            .seedsChanged(file: "/p/db/seeds/001_users.sql"),
            .manifestChanged(.backend, file: "/p/apps/backend/package.json"),
            .sourceChanged(.frontend, file: "/p/apps/frontend/src/main.ts"),
        ])
    }

    @Test func pathsOutsideTheLayoutAreNotActions() {
        #expect(classifier.classify(paths: ["/p/README.md", "/other/apps/backend/x.js", "/p/apps/backend2/x.js",
                                            "/p/apps/back", "/p/db/migrations-old/1.sql"]) == [])
        #expect(classifier.classify([]) == [])
    }

    @Test func theDeepestDirectoryClaimsAPath() {
        let nested = ChangeClassifier(layout: WatchLayout(
            backendDirectory: "/p/backend", frontendDirectory: nil,
            migrationsDirectory: "/p/backend/db/migrations", seedsDirectory: "/p/backend/db/seeds", envFile: "/p/.env"))
        #expect(nested.classify(paths: ["/p/backend/db/migrations/001.sql"]) == [.migrationsChanged(file: "/p/backend/db/migrations/001.sql")])
        #expect(nested.classify(paths: ["/p/backend/db/seeds/001.sql"]) == [.seedsChanged(file: "/p/backend/db/seeds/001.sql")])
        #expect(nested.classify(paths: ["/p/backend/db/schema.ts"]) == [.sourceChanged(.backend, file: "/p/backend/db/schema.ts")])
    }

    @Test func directories() {
        // A new directory says nothing by itself (its files come as their own changes); a removed one does.
        #expect(classifier.classify([ChangedPath("/p/apps/backend/src/new", .created, isDirectory: true)]) == [])
        #expect(classifier.classify([ChangedPath("/p/apps/backend/src/old", .removed, isDirectory: true)])
                == [.sourceChanged(.backend, file: "/p/apps/backend/src/old")])
        #expect(classifier.classify([ChangedPath("/p/apps/backend/package.json", .removed, isDirectory: true)])
                == [.sourceChanged(.backend, file: "/p/apps/backend/package.json")], "a directory is never a manifest")
        #expect(classifier.classify([ChangedPath("/p/apps/backend", .removed, isDirectory: true)])
                == [.sourceChanged(.backend, file: "/p/apps/backend")])
    }

    @Test func removedFilesCountToo() {
        #expect(classifier.classify([ChangedPath("/p/apps/backend/yarn.lock", .removed)])
                == [.manifestChanged(.backend, file: "/p/apps/backend/yarn.lock")])
        #expect(classifier.classify([ChangedPath("/p/db/migrations/003.sql", .removed)])
                == [.migrationsChanged(file: "/p/db/migrations/003.sql")])
    }

    @Test func pathsAreNormalizedBeforeMatching() {
        #expect(classifier.classify(paths: ["/p/apps/backend/./src//a.js"]) == [.sourceChanged(.backend, file: "/p/apps/backend/src/a.js")])
        #expect(classifier.classify(paths: ["/p/apps/frontend/../backend/a.js"]) == [.sourceChanged(.backend, file: "/p/apps/backend/a.js")])
        let trailing = ChangeClassifier(layout: WatchLayout(backendDirectory: "/p/apps/backend/", frontendDirectory: nil,
                                                            migrationsDirectory: nil, seedsDirectory: nil, envFile: nil))
        #expect(trailing.classify(paths: ["/p/apps/backend/a.js"]) == [.sourceChanged(.backend, file: "/p/apps/backend/a.js")])
        #expect(trailing.classify(paths: ["/p/.env"]) == [], "no .env configured")
    }

    @Test func customManifestNames() {
        let c = ChangeClassifier(layout: layout, manifestNames: ["deno.json"])
        #expect(c.classify(paths: ["/p/apps/backend/deno.json"]) == [.manifestChanged(.backend, file: "/p/apps/backend/deno.json")])
        #expect(c.classify(paths: ["/p/apps/backend/package.json"]) == [.sourceChanged(.backend, file: "/p/apps/backend/package.json")])
    }

    @Test func layoutFromConfigResolvesAgainstTheProjectDirectory() {
        let app = Config.App(directory: "apps/backend", devCommand: "node --watch src/server.js", installCommand: "",
                             port: 3000, healthPath: "/health", reloadMode: .restart, image: "node:20")
        var frontend = app
        frontend.directory = "/abs/frontend/"
        frontend.port = 5173
        let config = Config(
            projectName: "sage", projectDirectory: "/home/dev/sage", runtime: .native, bindAddress: "127.0.0.1",
            postgres: .init(image: "postgres:18", user: "sage", password: "pw", database: "sage", port: 5432),
            valkey: .init(image: "valkey/valkey:8", password: "", port: 6379),
            backend: app, frontend: frontend, migrationsDirectory: "apps/backend/db/migrations", seedsDirectory: "./db/seeds",
            migrateCommand: "", seedCommand: "", watchIgnore: [], watchDebounceMilliseconds: 50,
            passthrough: [:], values: [:])
        let l = WatchLayout(config: config)
        #expect(l.backendDirectory == "/home/dev/sage/apps/backend")
        #expect(l.frontendDirectory == "/abs/frontend")
        #expect(l.migrationsDirectory == "/home/dev/sage/apps/backend/db/migrations")
        #expect(l.seedsDirectory == "/home/dev/sage/db/seeds")
        #expect(l.envFile == "/home/dev/sage/.env")
        #expect(l.trees == ["/home/dev/sage/apps/backend", "/abs/frontend", "/home/dev/sage/db/seeds"],
                "migrations lie inside the backend tree, so they need no tree of their own")
    }

    @Test func normalize() {
        #expect(WatchLayout.normalize("/a//b/./c/") == "/a/b/c")
        #expect(WatchLayout.normalize("/a/b/../c") == "/a/c")
        #expect(WatchLayout.normalize("/../a") == "/a")
        #expect(WatchLayout.normalize("/") == "/")
        #expect(WatchLayout.normalize("a/./b") == "a/b")
        #expect(WatchLayout.normalize("./") == ".")
        #expect(WatchLayout.isSameOrInside("/a/b", "/a"))
        #expect(WatchLayout.isSameOrInside("/a", "/a"))
        #expect(!WatchLayout.isSameOrInside("/ab", "/a"))
        #expect(WatchLayout.isSameOrInside("/x", "/"))
    }
}
