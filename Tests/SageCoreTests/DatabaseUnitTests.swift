import Testing
import Foundation
import SageSystem
@testable import SageCore

@Suite struct SQLLocationTests {
    @Test func positionsMapToLinesAndColumns() {
        let text = "SELECT 1;\nSELECT 2;\n\nSELEC 3;\n"
        // 1-based character offsets: 'S' of line 4 is after 10 + 10 + 1 characters.
        #expect(SQLLocation.lineAndColumn(ofPosition: 1, in: text)! == (1, 1))
        #expect(SQLLocation.lineAndColumn(ofPosition: 10, in: text)! == (1, 10))  // the newline itself ends line 1
        #expect(SQLLocation.lineAndColumn(ofPosition: 11, in: text)! == (2, 1))
        #expect(SQLLocation.lineAndColumn(ofPosition: 22, in: text)! == (4, 1))
        #expect(SQLLocation.lineAndColumn(ofPosition: 27, in: text)! == (4, 6))
    }

    @Test func positionsCountCharactersNotBytes() {
        // PostgreSQL counts characters in the server encoding: "é" and "😀" are one each, though 2 and 4 bytes in UTF-8.
        let text = "-- café 😀\nINSERT INTO t VALUES ('ü');\nSELEC x;"
        let line3 = text.unicodeScalars.count - "SELEC x;".unicodeScalars.count + 1
        #expect(SQLLocation.lineAndColumn(ofPosition: line3, in: text)! == (3, 1))
        #expect(SQLLocation.lineAndColumn(ofPosition: 9, in: text)! == (1, 9))  // 😀
        #expect(SQLLocation.lineAndColumn(ofPosition: 10, in: text)! == (1, 10))  // the newline after it
        #expect(SQLLocation.lineAndColumn(ofPosition: 11, in: text)! == (2, 1))
    }

    @Test func endOfInputAndOutOfRange() {
        let text = "SELECT (1\n"
        // "syntax error at end of input" points one past the last character.
        #expect(SQLLocation.lineAndColumn(ofPosition: 11, in: text)! == (2, 1))
        #expect(SQLLocation.lineAndColumn(ofPosition: 12, in: text) == nil)
        #expect(SQLLocation.lineAndColumn(ofPosition: 0, in: text) == nil)
        #expect(SQLLocation.lineAndColumn(ofPosition: -3, in: text) == nil)
        #expect(SQLLocation.lineAndColumn(ofPosition: 1, in: "")! == (1, 1))
    }

    @Test func crlfLinesCountOnce() {
        let text = "SELECT 1;\r\nSELEC 2;\r\n"
        #expect(SQLLocation.lineAndColumn(ofPosition: 12, in: text)! == (2, 1))
        #expect(SQLLocation.lineText(2, in: text) == "SELEC 2;")
        #expect(SQLLocation.lineText(9, in: text) == nil)
    }
}

@Suite struct ChecksumAndKeyTests {
    func file(_ name: String, _ text: String) -> SQLFile { SQLFile(name: name, path: "/x/" + name, text: text) }

    @Test func checksumIsSHA256OfTheBytes() {
        #expect(SQLFile.checksum(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(file("a.sql", "").checksum == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(file("a.sql", "x").checksum != file("a.sql", "x ").checksum)
    }

    @Test func keyChangesWithEveryInput() {
        let m = [file("001.sql", "CREATE TABLE a();"), file("002.sql", "CREATE TABLE b();")]
        let s = [file("001.sql", "INSERT INTO a DEFAULT VALUES;")]
        let base = TemplateKey.compute(migrations: m, seeds: s, migrateCommand: "", seedCommand: "")
        #expect(base.count == 64)
        #expect(base == TemplateKey.compute(migrations: m, seeds: s, migrateCommand: "", seedCommand: ""))
        var edited = m; edited[1] = file("002.sql", "CREATE TABLE b(x int);")
        var renamed = m; renamed[1] = file("003.sql", "CREATE TABLE b();")
        let variants = [
            TemplateKey.compute(migrations: edited, seeds: s, migrateCommand: "", seedCommand: ""),
            TemplateKey.compute(migrations: renamed, seeds: s, migrateCommand: "", seedCommand: ""),
            TemplateKey.compute(migrations: Array(m.prefix(1)), seeds: s, migrateCommand: "", seedCommand: ""),
            TemplateKey.compute(migrations: m, seeds: [], migrateCommand: "", seedCommand: ""),
            TemplateKey.compute(migrations: m, seeds: s + [file("002.sql", "")], migrateCommand: "", seedCommand: ""),
            TemplateKey.compute(migrations: m, seeds: s, migrateCommand: "prisma migrate deploy", seedCommand: ""),
            TemplateKey.compute(migrations: m, seeds: s, migrateCommand: "", seedCommand: "prisma db seed"),
        ]
        #expect(Set(variants + [base]).count == variants.count + 1)
    }

    @Test func keyFieldsCannotRunTogether() {
        // Without length prefixes "ab"+"" and "a"+"b" would hash the same bytes.
        #expect(TemplateKey.compute(migrations: [], seeds: [], migrateCommand: "ab", seedCommand: "")
                != TemplateKey.compute(migrations: [], seeds: [], migrateCommand: "a", seedCommand: "b"))
        // A file moved from migrations to seeds is a different database.
        let f = file("001.sql", "SELECT 1;")
        #expect(TemplateKey.compute(migrations: [f], seeds: [], migrateCommand: "", seedCommand: "")
                != TemplateKey.compute(migrations: [], seeds: [f], migrateCommand: "", seedCommand: ""))
    }

    @Test func cachedDigestsMatchLoadedFilesAndSeeEdits() throws {
        var t = Array("/tmp/sagedev-unit-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&t)!)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileDescriptor.writeFileAtomically(dir + "/001.sql", Array("SELECT 1;".utf8))
        try FileDescriptor.writeFileAtomically(dir + "/002.sql", Array("SELECT 'é';".utf8))
        let cache = SQLChecksumCache()
        let loaded = try SQLFiles.load(directory: dir)
        let digests = try cache.digests(directory: dir)
        #expect(digests == loaded.map { SQLFileDigest(name: $0.name, checksum: $0.checksum) })
        #expect(TemplateKey.compute(migrations: loaded, seeds: [], migrateCommand: "", seedCommand: "")
                == TemplateKey.compute(migrationDigests: digests, seedDigests: [], migrateCommand: "", seedCommand: ""))
        // A rewrite (new inode, new size) is seen.
        try FileDescriptor.writeFileAtomically(dir + "/001.sql", Array("SELECT 11;".utf8))
        #expect(try cache.digests(directory: dir)[0].checksum == SQLFile.checksum(Array("SELECT 11;".utf8)))
        #expect(try cache.digests(directory: dir + "/none").isEmpty)
    }

    @Test func aSeedThatIsASymbolicLinkIsHashedAgainWhenWhatItNamesChanges() throws {
        var t = Array("/tmp/sagedev-unit-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&t)!)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileDescriptor.writeFileAtomically(dir + "/generated.txt", Array("SELECT 1;".utf8))
        try #require(symlink(dir + "/generated.txt", dir + "/001.sql") == 0)
        let cache = SQLChecksumCache()
        #expect(try cache.digests(directory: dir).map(\.checksum) == [SQLFile.checksum(Array("SELECT 1;".utf8))])
        // The link itself stays as it was; the file it names is regenerated with other rows of the same size.
        try FileDescriptor.writeFileAtomically(dir + "/generated.txt", Array("SELECT 2;".utf8))
        #expect(try cache.digests(directory: dir).map(\.checksum) == [SQLFile.checksum(Array("SELECT 2;".utf8))])
    }

    @Test func blankFilesAreRecognised() {
        #expect(file("a.sql", "").isBlank)
        #expect(file("a.sql", "-- nothing yet\n\n   -- still nothing\r\n").isBlank)
        #expect(!file("a.sql", "-- one\nSELECT 1;").isBlank)
        #expect(!file("a.sql", "-- one\r\nSELECT 1;\r\n").isBlank)
    }

    @Test func literalsAndIdentifiersAreQuoted() {
        #expect(SQL.literal("it's") == "'it''s'")
        #expect(SQL.literal("a\\b'c") == "E'a\\\\b''c'")
        #expect(SQL.identifier("my \"db\"") == "\"my \"\"db\"\"\"")
    }
}

@Suite struct DatabaseNamingTests {
    @Test func templateAndSnapshotNames() throws {
        #expect(DatabaseNames.template(for: "sage") == "sage__sagedev_template")
        #expect(try DatabaseNames.snapshot("before-upgrade_2", for: "sage") == "sage__sagedev_snap_before-upgrade_2")
    }

    @Test func longNamesFitPostgresIdentifierLimit() throws {
        let a = String(repeating: "a", count: 60), b = String(repeating: "a", count: 59) + "b"
        for db in [a, b, String(repeating: "é", count: 40)] {
            #expect(DatabaseNames.template(for: db).utf8.count <= 63)
            #expect(DatabaseNames.snapshotPrefix(for: db).utf8.count <= 63)
            #expect(DatabaseNames.templateBuild(for: db).utf8.count <= 63)
        }
        #expect(DatabaseNames.template(for: a) != DatabaseNames.template(for: b))
        #expect(DatabaseNames.template(for: a).hasSuffix("__sagedev_template"))
        // Multi-byte characters are never cut in half.
        #expect(String(decoding: Array(DatabaseNames.template(for: String(repeating: "é", count: 40)).utf8), as: UTF8.self)
                == DatabaseNames.template(for: String(repeating: "é", count: 40)))
    }

    @Test func snapshotNamesAreValidated() {
        for bad in ["", "-x", "_x", "a b", "a;drop", "ä", "x\"y", String(repeating: "x", count: 60)] {
            #expect(throws: DatabaseError.self, "\(bad)") { try DatabaseNames.validateSnapshotName(bad, for: "sage") }
        }
        #expect(throws: Never.self) { try DatabaseNames.validateSnapshotName("Auto-2025_01", for: "sage") }
    }

    @Test func labelsRoundTrip() {
        let l = DatabaseLabel(kind: "snapshot", fields: ["kind": "auto", "name": "auto-1", "created": "1700000000.5"])
        #expect(l.text == "sagedev snapshot v1 created=1700000000.5 kind=auto name=auto-1")
        #expect(DatabaseLabel.parse(l.text) == l)
        #expect(DatabaseLabel.parse("made by hand") == nil)
        #expect(DatabaseLabel.parse(nil) == nil)
        #expect(DatabaseLabel.parse("sagedev template v2 key=x") == nil)
    }
}

@Suite struct SQLFilesAndBackupNamingTests {
    func tempDirectory() -> String {
        var t = Array("/tmp/sagedev-unit-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&t)!)
    }

    @Test func filesLoadInByteOrderAndOnlySQL() throws {
        let dir = tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (n, t) in [("010_c.sql", "c"), ("002_b.sql", "b"), ("001_a.sql", "a"), ("README.md", "no"), (".hidden.sql", "no"), ("B_upper.sql", "B")] {
            try FileDescriptor.writeFileAtomically(dir + "/" + n, Array(t.utf8))
        }
        let files = try SQLFiles.load(directory: dir)
        #expect(files.map(\.name) == ["001_a.sql", "002_b.sql", "010_c.sql", "B_upper.sql"])
        #expect(files[0].text == "a" && files[0].path == dir + "/001_a.sql")
        #expect(try SQLFiles.load(directory: dir + "/missing").isEmpty)
        #expect(SQLFiles.resolve("db/seeds", in: "/p") == "/p/db/seeds")
        #expect(SQLFiles.resolve("/abs", in: "/p") == "/abs")
    }

    @Test func backupNamesParseAndSort() {
        #expect(BackupStore.fileName(stamp: "20250102_030405") == "backup_20250102_030405.sql.gz")
        #expect(BackupStore.fileName(stamp: "20250102_030405", sequence: 3) == "backup_20250102_030405_3.sql.gz")
        #expect(BackupStore.parse("backup_20250102_030405.sql.gz")! == ("20250102_030405", 1))
        #expect(BackupStore.parse("backup_20250102_030405_12.sql.gz")! == ("20250102_030405", 12))
        for bad in ["backup_2025_030405.sql.gz", "backup_20250102_030405.sql", "x_20250102_030405.sql.gz",
                    "backup_20250102_030405_1.sql.gz", "backup_20250102_03040a.sql.gz", "backup_20250102_030405.sql.gz.partial"] {
            #expect(BackupStore.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func retentionKeepsTheNewest() throws {
        let dir = tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = ["backup_20250101_000000.sql.gz", "backup_20250101_000000_2.sql.gz", "backup_20250101_000000_10.sql.gz",
                     "backup_20250101_000001.sql.gz", "backup_20241231_235959.sql.gz", "notes.txt"]
        for n in names { try FileDescriptor.writeFileAtomically(dir + "/" + n, [1]) }
        let store = BackupStore(directory: dir, environmentPath: nil) { _ in PostgresClientCommand(argv: ["/bin/false"], environment: [:]) }
        #expect(store.list().map { ($0 as NSString).lastPathComponent } == [
            "backup_20241231_235959.sql.gz", "backup_20250101_000000.sql.gz", "backup_20250101_000000_2.sql.gz",
            "backup_20250101_000000_10.sql.gz", "backup_20250101_000001.sql.gz"])
        let removed = try store.prune(keep: 2).map { ($0 as NSString).lastPathComponent }
        #expect(removed == ["backup_20241231_235959.sql.gz", "backup_20250101_000000.sql.gz", "backup_20250101_000000_2.sql.gz"])
        #expect(store.list().count == 2)
        #expect(FileDescriptor.exists(dir + "/notes.txt"))
        #expect(try store.prune(keep: 7).isEmpty)
    }
}

@Suite struct ResetLoopUnitTests {
    @Test func postgresClientsAreTheServicesThatReachPostgresDirectlyOrThroughAJob() throws {
        let app = AppSpec(directory: "x", devCommand: "true")
        let graph = try ServiceGraph.build([
            ServiceSpec(id: .postgres, kind: .postgres, probe: .postgres),
            ServiceSpec(id: .valkey, kind: .valkey, probe: .resp),
            ServiceSpec(id: .database, kind: .job(JobSpec(.database)), dependsOn: [Dependency(.postgres)], probe: .completed),
            ServiceSpec(id: .backend, kind: .app(app), dependsOn: [Dependency(.valkey), Dependency(.database, .completedSuccessfully)], probe: .http(path: "/")),
            ServiceSpec(id: .frontend, kind: .app(app), dependsOn: [Dependency(.backend)], probe: .http(path: "/")),
            ServiceSpec(id: "worker", kind: .app(app), dependsOn: [Dependency(.postgres)], probe: .processAlive(seconds: 1)),
            ServiceSpec(id: "mail", kind: .container(ContainerSpec(image: "m")), probe: .tcp),
        ])
        #expect(graph.postgresClients == [.backend, "worker"])
    }

    @Test func cloneNamesAreValidatedAndFitPostgresIdentifiers() throws {
        #expect(try DatabaseNames.clone("w1", for: "sage") == "sage__clone_w1")
        for bad in ["", "Upper", "with space", "-lead", "_lead", "semi;colon", String(repeating: "a", count: 60)] {
            #expect(throws: DatabaseError.self) { try DatabaseNames.clone(bad, for: "sage") }
            #expect((try? DatabaseNames.validateCloneName(bad, for: "sage")) == nil)
        }
        let long = String(repeating: "d", count: 60)
        let name = try DatabaseNames.clone("worker-07", for: long)
        #expect(name.utf8.count <= 63 && name.hasSuffix("__clone_worker-07"))
        #expect(DatabaseNames.aside(for: long, stamp: 42).utf8.count <= 63)
        #expect(DatabaseNames.aside(for: "sage", stamp: 255) == "sage__sagedev_old_00000000000000ff")
        #expect(DatabaseNames.spare(2, for: "sage") == "sage__sagedev_spare_2")
        #expect(DatabaseNames.spare(16, for: long).hasPrefix(DatabaseNames.sparePrefix(for: long)))
    }

    @Test func theFaultSeamNamesAStepAndATarget() {
        let daemon = ResetFaults(environment: ["SAGEDEV_FAULT_RESET_STEP": "swap"])
        #expect(daemon.step == "swap" && daemon.target == .daemon)
        let postgres = ResetFaults(environment: ["SAGEDEV_FAULT_RESET_STEP": "flush-cache:postgres", "SAGEDEV_FAULT_FREE_BYTES": "12"])
        #expect(postgres.step == "flush-cache" && postgres.target == .postgres && postgres.freeBytes == 12)
        #expect(ResetFaults(environment: ["SAGEDEV_FAULT_RESET_STEP": "nonsense"]).step == nil)
        #expect(ResetFaults(environment: [:]).step == nil)
    }

    @Test func legacySpareSwitchMeansNoReadyCopies() throws {
        let c = try #require(configResolve("POSTGRES_PASSWORD=x\nVALKEY_PASSWORD=\n").config)
        #expect(c.resetSpares == 2)
        #expect(DatabaseManager.readyCopiesTarget(c, environment: [:]) == 2)
        #expect(DatabaseManager.readyCopiesTarget(c, environment: ["SAGEDEV_RESET_SPARE": "off"]) == 0)
        let three = try #require(configResolve("POSTGRES_PASSWORD=x\nVALKEY_PASSWORD=\nSAGEDEV_RESET_SPARES=3\n").config)
        #expect(DatabaseManager.readyCopiesTarget(three, environment: ["SAGEDEV_RESET_SPARE": "off"]) == 3)
        #expect(configResolve("POSTGRES_PASSWORD=x\nVALKEY_PASSWORD=\nSAGEDEV_RESET_SPARES=many\n").config == nil)
    }
}
