import Testing
@testable import SageCore

@Suite struct IgnoreRulesTests {
    @Test func defaultsExcludeTheUsualDirectoriesAtAnyDepth() {
        let rules = IgnoreRules()
        for path in ["node_modules", "node_modules/react/index.js", "apps/backend/node_modules/x/package.json",
                     ".git", ".git/HEAD", "dist", "apps/frontend/dist/app.js", "build", "build/out.o",
                     ".sagedev", ".sagedev/run/sagedev.sock", "packages/ui/build/index.js"] {
            let excluded = rules.isExcluded(path)
            #expect(excluded, "\(path) should be excluded")
        }
        for path in ["src/server.js", "builder.ts", "src/build.ts", "distribution/a", "node_modules_backup/x",
                     "apps/backend/package.json", ".gitignore", ".github/workflows/ci.yml"] {
            let excluded = rules.isExcluded(path)
            #expect(!excluded, "\(path) should be watched")
        }
    }

    @Test func defaultsCanBeLeftOut() {
        let rules = IgnoreRules([], includeDefaults: false)
        #expect(!rules.isExcluded("node_modules/x"))
        #expect(rules.patterns.isEmpty)
    }

    @Test func singleStarStaysInsideOneSegment() {
        let rules = IgnoreRules(["*.log"], includeDefaults: false)
        #expect(rules.isExcluded("server.log"))
        #expect(!rules.isExcluded("src/server.log"), "without ** a pattern is anchored at the base, as in Docker")
        #expect(!rules.isExcluded("server.log.txt"))
        let deep = IgnoreRules(["**/*.log"], includeDefaults: false)
        #expect(deep.isExcluded("server.log"))
        #expect(deep.isExcluded("src/a/b/server.log"))
        #expect(!deep.isExcluded("src/server.logs"))
        let middle = IgnoreRules(["src/*/tmp"], includeDefaults: false)
        #expect(middle.isExcluded("src/a/tmp"))
        #expect(middle.isExcluded("src/a/tmp/file"))
        #expect(!middle.isExcluded("src/a/b/tmp"))
    }

    @Test func questionMarkMatchesOneCharacterButNotSlash() {
        let rules = IgnoreRules(["file?.txt"], includeDefaults: false)
        #expect(rules.isExcluded("file1.txt"))
        #expect(rules.isExcluded("fileé.txt"), "one character, not one byte")
        #expect(!rules.isExcluded("file10.txt"))
        #expect(!rules.isExcluded("file.txt"))
        #expect(!rules.isExcluded("file/.txt"))
    }

    @Test func doubleStarSpansDirectories() {
        let rules = IgnoreRules(["src/**/gen"], includeDefaults: false)
        #expect(rules.isExcluded("src/gen"), "** matches zero directories")
        #expect(rules.isExcluded("src/a/b/gen"))
        #expect(rules.isExcluded("src/a/gen/file.ts"), "contents of a matched directory")
        #expect(!rules.isExcluded("src/generated"))
        #expect(!rules.isExcluded("lib/gen"))

        let trailing = IgnoreRules(["tmp/**"], includeDefaults: false)
        #expect(trailing.isExcluded("tmp/a"))
        #expect(trailing.isExcluded("tmp/a/b/c"))
        #expect(!trailing.isExcluded("tmp"), "tmp/** matches what is below tmp, as Docker does")

        let everything = IgnoreRules(["**"], includeDefaults: false)
        #expect(everything.isExcluded("a"))
        #expect(everything.isExcluded("a/b/c"))

        // Docker quirk kept: "**" followed by more text matches whole directories, then the text.
        let glued = IgnoreRules(["a**b"], includeDefaults: false)
        #expect(glued.isExcluded("ab"))
        #expect(glued.isExcluded("ax/b"))
        #expect(!glued.isExcluded("axb"))
    }

    @Test func negationReincludesAndTheLastMatchWins() {
        let rules = IgnoreRules(["*.md", "!README.md"], includeDefaults: false)
        #expect(rules.isExcluded("CHANGES.md"))
        #expect(!rules.isExcluded("README.md"))

        let reExcluded = IgnoreRules(["*.md", "!README*.md", "README-secret.md"], includeDefaults: false)
        #expect(!reExcluded.isExcluded("README.md"))
        #expect(reExcluded.isExcluded("README-secret.md"))

        let negationFirst = IgnoreRules(["!a.txt", "*.txt"], includeDefaults: false)
        #expect(negationFirst.isExcluded("a.txt"), "a later pattern overrides an earlier negation")
    }

    @Test func negationCanReachBelowAnExcludedDirectory() {
        let rules = IgnoreRules(["!build/keep.txt"])
        #expect(rules.isExcluded("build/other.txt"))
        #expect(!rules.isExcluded("build/keep.txt"))
        #expect(!rules.skipsDirectory("build"), "the watcher must look inside build for keep.txt")
        #expect(rules.skipsDirectory("node_modules"))
        #expect(rules.skipsDirectory("apps/backend/node_modules"))
        #expect(rules.skipsDirectory("apps/build"), "!build/keep.txt is anchored at the base, so apps/build holds nothing")
        #expect(!rules.skipsDirectory("src"), "not excluded at all")

        let deep = IgnoreRules(["!**/keep"])
        #expect(!deep.skipsDirectory("a/b/node_modules"), "a ** negation may match anywhere below")
    }

    @Test func leadingAndTrailingSlashesChangeNothing() {
        for pattern in ["/tmp", "tmp/", "/tmp/", "./tmp", "tmp//", "src/../tmp"] {
            let rules = IgnoreRules([pattern], includeDefaults: false)
            #expect(rules.isExcluded("tmp"), "\(pattern)")
            #expect(rules.isExcluded("tmp/x/y"), "\(pattern)")
            #expect(!rules.isExcluded("src/tmp"), "\(pattern)")
            #expect(rules.patterns.first?.cleaned == "tmp", "\(pattern)")
        }
    }

    @Test func characterClassesAndEscapes() {
        let rules = IgnoreRules(["[abc].txt", "[^0-9]x", "n[0-9][0-9]", "\\*literal", "q\\?"], includeDefaults: false)
        #expect(rules.isExcluded("a.txt"))
        #expect(!rules.isExcluded("d.txt"))
        #expect(rules.isExcluded("zx"))
        #expect(!rules.isExcluded("5x"))
        #expect(rules.isExcluded("n42"))
        #expect(!rules.isExcluded("n4"))
        #expect(rules.isExcluded("*literal"))
        #expect(!rules.isExcluded("xliteral"))
        #expect(rules.isExcluded("q?"))
        #expect(!rules.isExcluded("qa"))
        let bracket = IgnoreRules(["[]a]b"], includeDefaults: false)
        #expect(bracket.isExcluded("]b"))
        #expect(bracket.isExcluded("ab"))
    }

    @Test func invalidPatternsAreReportedAndDropped() {
        let rules = IgnoreRules(["[abc", "!", "ok", "trailing\\"], includeDefaults: false)
        #expect(rules.patterns.map(\.cleaned) == ["ok"])
        #expect(rules.invalidPatterns.map(\.pattern) == ["[abc", "!", "trailing\\"])
        #expect(IgnoreRules.problem(in: "[abc")?.contains("unterminated") == true)
        #expect(IgnoreRules.problem(in: "!") != nil)
        #expect(IgnoreRules.problem(in: "**/*.log") == nil)
        #expect(IgnoreRules.problem(in: "") == nil, "an empty entry is skipped, not an error")
    }

    @Test func dockerignoreFileTextParses() {
        let text = "\u{FEFF}# comment\n\n  *.log  \r\n!keep.log\n   # indented comment\n/dist/\n"
        #expect(IgnoreRules.parseDockerignore(text) == ["*.log", "!keep.log", "/dist/"])
    }

    @Test func theBaseItselfIsNeverExcluded() {
        let rules = IgnoreRules(["**"], includeDefaults: false)
        #expect(!rules.isExcluded(""))
        #expect(!rules.isExcluded("."))
        #expect(IgnoreRules.problem(in: "/") != nil)
    }

    /// Eight stars against a long run of a's is exponential for a plain backtracking matcher; with the memo the
    /// work stays polynomial. Counted in matching steps, not timed.
    @Test func longPathsAndManyStarsStayPolynomial() {
        let rules = IgnoreRules(["**/*a*a*a*a*a*a*a*b"], includeDefaults: false)
        func work(_ n: Int) -> (excluded: Bool, steps: Int) {
            rules.exclusionWork(String(repeating: "a", count: n) + "/" + String(repeating: "a", count: n))
        }
        let small = work(100), large = work(200)
        #expect(!small.excluded && !large.excluded)
        #expect(large.steps < 5_000_000, "\(large.steps) steps for 401 bytes")
        // Doubling the path may grow the work polynomially (about 4x for these two runs of stars), never exponentially.
        #expect(large.steps <= small.steps * 10, "\(small.steps) -> \(large.steps) steps")
    }
}
