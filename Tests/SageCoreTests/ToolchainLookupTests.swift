import Testing
import Glibc
import SageSystem
@testable import SageCore

/// The lookup order: SAGEDEV_*_BIN_DIR → the project's .sagedev/toolchain → the user toolchain → PATH, each hit
/// saying where it came from.
@Suite struct ToolchainLookupTests {
    /// A temp tree with a fake `postgres` in each of the four places; returns its root.
    func tree(_ places: Set<String>) throws -> String {
        var template = Array("/tmp/sagedev-lookup-XXXXXX".utf8CString)
        let root = String(cString: mkdtemp(&template)!)
        let dirs = ["explicit": root + "/pg/bin", "project": root + "/project/.sagedev/toolchain/bin",
                    "user": root + "/data/sagedev/toolchain/postgres-18.6.3/bin", "path": root + "/usr/bin"]
        for (name, dir) in dirs {
            try FileDescriptor.makeDirectories(dir)
            if places.contains(name) { try FileDescriptor.writeFileAtomically(dir + "/postgres", Array("#!/bin/sh\n".utf8), mode: 0o755) }
        }
        try FileDescriptor.makeDirectories(root + "/project/app")
        return root
    }

    func locate(_ root: String, explicit: Bool = true) -> ToolchainHit? {
        Toolchain(projectDirectory: root + "/project/app", environment: ["XDG_DATA_HOME": root + "/data", "PATH": root + "/usr/bin"])
            .locate(["postgres"], explicitDirectory: explicit ? root + "/pg/bin" : nil)
    }

    @Test func explicitDirectoryComesFirst() throws {
        let root = try tree(["explicit", "project", "user", "path"])
        defer { try? FileTree.remove(root) }
        #expect(locate(root) == ToolchainHit(path: root + "/pg/bin/postgres", source: .explicitDirectory, sourceDescription: "SAGEDEV_POSTGRES_BIN_DIR"))
    }

    @Test func projectToolchainAboveTheProjectComesBeforeTheUserToolchain() throws {
        let root = try tree(["project", "user", "path"])
        defer { try? FileTree.remove(root) }
        #expect(locate(root) == ToolchainHit(path: root + "/project/.sagedev/toolchain/bin/postgres", source: .project, sourceDescription: "project toolchain"))
    }

    @Test func userToolchainComesBeforePATH() throws {
        let root = try tree(["user", "path"])
        defer { try? FileTree.remove(root) }
        #expect(locate(root, explicit: false) == ToolchainHit(path: root + "/data/sagedev/toolchain/postgres-18.6.3/bin/postgres", source: .user, sourceDescription: "user toolchain"))
    }

    @Test func pathIsTheLastResort() throws {
        let root = try tree(["path"])
        defer { try? FileTree.remove(root) }
        #expect(locate(root) == ToolchainHit(path: root + "/usr/bin/postgres", source: .path, sourceDescription: "PATH"))
    }

    @Test func userDirectoryFollowsXDGDataHomeElseHome() {
        #expect(Toolchain.userDirectory(environment: ["XDG_DATA_HOME": "/x/share", "HOME": "/home/a"]) == "/x/share/sagedev/toolchain")
        #expect(Toolchain.userDirectory(environment: ["XDG_DATA_HOME": "relative", "HOME": "/home/a"]) == "/home/a/.local/share/sagedev/toolchain")
        #expect(Toolchain.userDirectory(environment: ["HOME": "/home/a"]) == "/home/a/.local/share/sagedev/toolchain")
    }

    @Test func missingBinaryNamesTheInstallCommand() throws {
        let root = try tree([])
        defer { try? FileTree.remove(root) }
        let t = Toolchain(projectDirectory: root + "/project/app", environment: ["XDG_DATA_HOME": root + "/data", "PATH": root + "/usr/bin"])
        #expect(throws: RuntimeError.self) { try t.require(["postgres"], explicitDirectory: nil, key: "SAGEDEV_POSTGRES_BIN_DIR", what: "PostgreSQL 18") }
        do { _ = try t.require(["postgres"], explicitDirectory: nil, key: "SAGEDEV_POSTGRES_BIN_DIR", what: "PostgreSQL 18") } catch {
            #expect("\(error)".contains("run 'sagedev toolchain install'") && "\(error)".contains(root + "/data/sagedev/toolchain"))
        }
    }
}
