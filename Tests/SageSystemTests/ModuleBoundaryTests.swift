import Testing
@testable import SageSystem

/// The package's own sources, read from the checkout these tests were built from.
private enum PackageSources {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(3)  // Tests/SageSystemTests/ModuleBoundaryTests.swift
        return parts.joined(separator: "/")
    }()

    /// Every .swift file under `directory` (relative to the package root), recursively, as relative paths.
    static func swiftFiles(under directory: String) -> [String] {
        var out: [String] = []
        var pending = [directory]
        while let dir = pending.popLast() {
            for (name, stamp) in (try? DirectoryScan.entries(of: root + "/" + dir)) ?? [] {
                let path = dir + "/" + name
                if stamp.isDirectory { pending.append(path) } else if name.hasSuffix(".swift") { out.append(path) }
            }
        }
        return out.sorted()
    }

    static func text(_ path: String) -> String { FileDescriptor.readText(root + "/" + path) ?? "" }

    /// Modules a file imports: `import X`, `@testable import X`, `import struct X.Y`, at the start of a line
    /// (an indented `import` is inside a string, e.g. a script the tests run).
    static func imports(_ text: String) -> Set<String> {
        var modules = Set<String>()
        for line in text.split(separator: "\n") {
            var words = line.split(separator: " ").map(String.init)
            guard !line.hasPrefix(" "), !line.hasPrefix("\t") else { continue }
            while let first = words.first, first.hasPrefix("@") { words.removeFirst() }
            guard words.first == "import", words.count >= 2 else { continue }
            let kinds: Set<String> = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
            let name = kinds.contains(words[1]) && words.count >= 3 ? words[2] : words[1]
            modules.insert(String(name.split(separator: ".").first ?? ""))
        }
        return modules
    }
}

/// One target as Package.swift declares it.
private struct DeclaredTarget: Equatable {
    var name: String
    var dependencies: [String]
    var path: String
    var isTest: Bool

    /// Reads every `.target(…)`, `.executableTarget(…)` and `.testTarget(…)` of a manifest.
    static func parse(_ manifest: String) -> [DeclaredTarget] {
        let chars = Array(manifest)
        var out: [DeclaredTarget] = []
        for marker in [".target(", ".executableTarget(", ".testTarget("] {
            let m = Array(marker)
            var i = 0
            while i + m.count <= chars.count {
                guard Array(chars[i..<i + m.count]) == m else { i += 1; continue }
                var depth = 1, j = i + m.count
                while j < chars.count && depth > 0 {
                    if chars[j] == "(" { depth += 1 } else if chars[j] == ")" { depth -= 1 }
                    j += 1
                }
                let body = String(chars[(i + m.count)..<(j - 1)])
                if let name = stringArgument("name", in: body) {
                    let isTest = marker == ".testTarget("
                    out.append(DeclaredTarget(name: name, dependencies: arrayArgument("dependencies", in: body),
                                              path: stringArgument("path", in: body) ?? (isTest ? "Tests/" : "Sources/") + name,
                                              isTest: isTest))
                }
                i = j
            }
        }
        return out
    }

    private static func stringArgument(_ label: String, in body: String) -> String? {
        guard let r = body.firstRange(of: label + ": \"") else { return nil }
        let rest = body[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    private static func arrayArgument(_ label: String, in body: String) -> [String] {
        guard let r = body.firstRange(of: label + ": ["), let end = body[r.upperBound...].firstIndex(of: "]") else { return [] }
        return body[r.upperBound..<end].split(separator: "\"", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }
}

@Suite struct ModuleBoundaryTests {
    /// Modules of the toolchain every target may import.
    static let toolchainModules: Set<String> = ["Foundation", "Dispatch", "Glibc", "Testing", "XCTest"]
    /// The only targets that talk to the OS directly.
    static let systemTargets: Set<String> = ["SageSystem", "CSageSystem"]

    @Test func onlySageSystemImportsTheCLibrary() {
        var offenders: [String] = []
        for dir in ["Sources", "bench/Sources"] {
            for file in PackageSources.swiftFiles(under: dir) {
                let target = file.dropFirst(dir.count + 1).split(separator: "/").first.map(String.init) ?? ""
                guard !Self.systemTargets.contains(target) else { continue }
                let bad = PackageSources.imports(PackageSources.text(file)).intersection(["Glibc", "Darwin", "Musl", "CSageSystem"])
                if !bad.isEmpty { offenders.append("\(file) imports \(bad.sorted().joined(separator: ", "))") }
            }
        }
        #expect(!PackageSources.swiftFiles(under: "Sources").isEmpty, "no sources found under \(PackageSources.root)")
        #expect(offenders.isEmpty, "only SageSystem may import the C library; move these OS calls behind a SageSystem API:\n\(offenders.joined(separator: "\n"))")
    }

    @Test func noRawOSCallOutsideSageSystem() {
        // Foundation re-exports the C library, so a call can slip in without `import Glibc`: these names have no
        // other meaning in the code.
        let calls = ["getpid(", "getppid(", "geteuid(", "getuid(", "getgid(", "getpwnam(", "kill(", "signal(", "sigaction(",
                     "unlink(", "rename(", "truncate(", "chown(", "chmod(", "stat(", "fstat(", "lstat(", "mkdir(", "rmdir(",
                     "opendir(", "readdir(", "isatty(", "getcwd(", "chdir(", "getenv(", "setenv(", "pread(", "dup(", "dup2(",
                     "poll(&", "waitpid(", "inotify_init1(", "inotify_add_watch(", "statvfs(", "getrusage(", "clock_gettime(",
                     "recv(", "shutdown(", "exit(", "fcntl("] + ["u", "nano"].map { $0 + "sl" + "eep(" }  // (split: no call here reads as one)
        var offenders: [String] = []
        for dir in ["Sources", "bench/Sources"] {
            for file in PackageSources.swiftFiles(under: dir) {
                let target = file.dropFirst(dir.count + 1).split(separator: "/").first.map(String.init) ?? ""
                guard !Self.systemTargets.contains(target) else { continue }
                for (n, line) in PackageSources.text(file).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let code = Array(line.utf8.drop(while: { $0 == 32 }))
                    guard code.contains(UInt8(ascii: "(")), !code.starts(with: Array("//".utf8)) else { continue }
                    for call in calls where Self.callsFreeFunction(code, call) {
                        offenders.append("\(file):\(n + 1): \(call)")
                    }
                }
            }
        }
        #expect(offenders.isEmpty, "OS calls outside SageSystem; use a SageSystem API:\n\(offenders.joined(separator: "\n"))")
    }

    /// `call` (e.g. `kill(`) not preceded by `.`, a letter, a digit or `_` (so `ProcFS.stat(` and `myStat(` do not
    /// count), and not a declaration (`func stat(`).
    static func callsFreeFunction(_ line: [UInt8], _ call: String) -> Bool {
        let needle = Array(call.utf8)
        var i = 0
        while i + needle.count <= line.count {
            if line[i] == needle[0] && line[i..<i + needle.count].elementsEqual(needle) {
                let before = i > 0 ? line[i - 1] : 32
                let isIdentifier = before == UInt8(ascii: ".") || before == UInt8(ascii: "_")
                    || (before >= 48 && before <= 57) || (before | 0x20 >= 97 && before | 0x20 <= 122)
                let declared = line[..<i].reversed().starts(with: Array(" cnuf".utf8))
                if !isIdentifier && !declared { return true }
            }
            i += 1
        }
        return false
    }
    static func callsFreeFunction(_ line: String, _ call: String) -> Bool { callsFreeFunction(Array(line.utf8), call) }

    @Test func theCallScanSeesCallsAndIgnoresMethods() {
        #expect(Self.callsFreeFunction("        kill(-pid, SIGKILL)", "kill("))
        #expect(Self.callsFreeFunction("let x = { getpid() }", "getpid("))
        #expect(Self.callsFreeFunction("_ = poll(&p, 1, ms)", "poll(&"))
        #expect(!Self.callsFreeFunction("tailer?.poll()", "poll(&"))
        #expect(!Self.callsFreeFunction("ProcFS.stat(pid: p)", "stat("))
        #expect(!Self.callsFreeFunction("public static func stat(pid: Int32)", "stat("))
        #expect(!Self.callsFreeFunction("let s = fileStat(p)", "stat("))
    }

    @Test func packageDeclaresEveryModuleATargetImports() throws {
        let targets = DeclaredTarget.parse(PackageSources.text("Package.swift"))
        let names = Set(targets.map(\.name))
        #expect(names.isSuperset(of: ["SageSystem", "SageCore", "SageCLI", "sagedev", "SageSystemTests"]), "parsed \(names.sorted())")
        var problems: [String] = []
        for t in targets {
            let files = PackageSources.swiftFiles(under: t.path)
            var used = Set<String>()
            for f in files { used.formUnion(PackageSources.imports(PackageSources.text(f))) }
            used.remove(t.name)
            let undeclared = used.subtracting(Self.toolchainModules).subtracting(t.dependencies)
            if !undeclared.isEmpty {
                problems.append("\(t.name) (\(t.path)) imports \(undeclared.sorted().joined(separator: ", ")) but its dependencies are \(t.dependencies)")
            }
            let unknown = Set(t.dependencies).subtracting(names)
            if !unknown.isEmpty { problems.append("\(t.name) depends on \(unknown.sorted()), which Package.swift does not declare") }
        }
        #expect(problems.isEmpty, "Package.swift must declare each target's real dependencies:\n\(problems.joined(separator: "\n"))")
    }

    @Test func theManifestParserReadsNamesDependenciesAndPaths() {
        let manifest = """
            .target(name: "A"),
            .target(name: "B", dependencies: ["A", "C"]),
            .executableTarget(name: "tool", dependencies: ["B"], path: "bench/Sources/tool"),
            .testTarget(name: "BTests", dependencies: ["B"]),
            """
        #expect(DeclaredTarget.parse(manifest) == [
            DeclaredTarget(name: "A", dependencies: [], path: "Sources/A", isTest: false),
            DeclaredTarget(name: "B", dependencies: ["A", "C"], path: "Sources/B", isTest: false),
            DeclaredTarget(name: "tool", dependencies: ["B"], path: "bench/Sources/tool", isTest: false),
            DeclaredTarget(name: "BTests", dependencies: ["B"], path: "Tests/BTests", isTest: true),
        ])
        #expect(PackageSources.imports("import Foundation\n@testable import SageCore\nimport struct Glibc.stat\n    import socket\n")
                == ["Foundation", "SageCore", "Glibc"])
    }
}
