import Testing
@testable import SageWire
import SageFuzz

/// `.env` parsing with Docker Compose v2's rules. The expectations were taken from `docker compose config`
/// (Compose 2.26) on the same files; IntegrationTests/ComposeConfigTests checks the same cases against the
/// real Compose on every run.
@Suite("DotEnv")
struct DotEnvTests {
    struct ValidCase: CustomTestStringConvertible, Sendable {
        let name: String
        let text: String
        let environment: [String: String]
        /// Effective values (process environment applied) for the keys listed; nil means "not set".
        let expected: [String: String?]
        init(_ name: String, _ text: String, env: [String: String] = [:], _ expected: [String: String?]) {
            self.name = name; self.text = text; self.environment = env; self.expected = expected
        }
        var testDescription: String { name }
    }

    static let valid: [ValidCase] = [
        ValidCase("plain assignment", "A=1\n", ["A": "1"]),
        ValidCase("no final newline", "A=1", ["A": "1"]),
        ValidCase("comments and blank lines", "# top\n\n   # indented comment\nA=1\n\n\nB=2 # trailing\n", ["A": "1", "B": "2"]),
        ValidCase("export prefix", "export A=1\nexport\tB=2\nexport  C=3\n", ["A": "1", "B": "2", "C": "3"]),
        ValidCase("export needs white space", "exportA=1\nexport=5\n", ["exportA": "1", "export": "5"]),
        ValidCase("inline comment needs a space before #", "A=abc#def\nB=abc #def\nC=abc\t#def\nD=a#b #c\n",
                  ["A": "abc#def", "B": "abc", "C": "abc\t#def", "D": "a#b"]),
        ValidCase("value that starts with #", "A= #c\nB=#c\n", ["A": "#c", "B": "#c"]),
        ValidCase("white space trimmed around key and value", "  A   =   spaced  value  \n\t B = \"2\"  \n",
                  ["A": "spaced  value", "B": "2"]),
        ValidCase("yaml-style colon", "A: 1\nB=b:c\nC:D=1\n", ["A": "1", "B": "b:c", "C": "D=1"]),
        ValidCase("equals inside the value", "A==b\nB=x=y\n", ["A": "=b", "B": "x=y"]),
        ValidCase("empty values", "A=\nB=\"\"\nC=''\n", ["A": "", "B": "", "C": ""]),
        ValidCase("single quotes are literal", "B=bee\nA='$B ${B} \\n # not a comment'\n",
                  ["A": "$B ${B} \\n # not a comment"]),
        ValidCase("single quotes unescape only \\'", "A='x\\'y'\nB='a\\\\b\\nc'\n", ["A": "x'y", "B": "a\\\\b\\nc"]),
        ValidCase("double-quote escapes", "A=\"a\\nb\\tc\\\"d\\\\e\"\n", ["A": "a\nb\tc\"d\\e"]),
        ValidCase("more Go escapes; unknown ones stay", "A=\"\\a\\b\\f\\r\\v|\\c|\\q|\\'\"\n",
                  ["A": "\u{07}\u{08}\u{0C}\r\u{0B}|\\c|\\q|\\'"]),
        ValidCase("octal escapes after \\0", "A=\"x\\0123\\01\\0\\08\\0400\"\nB=\"\\377\"\nC=\"\\0377\"\n",
                  ["A": "xS\\1\\\\8\\400", "B": "\\377", "C": "\u{FF}"]),
        ValidCase("\\$ and $$ are a literal $", "A=x\nB=\"${A}\\${A}$${A}\"\nC=$$A\n", ["B": "x${A}${A}", "C": "$A"]),
        ValidCase("multi-line double quotes", "A=\"multi\nline\"\nB=2\n", ["A": "multi\nline", "B": "2"]),
        ValidCase("multi-line single quotes", "A='one\ntwo'\nB=3\n", ["A": "one\ntwo", "B": "3"]),
        ValidCase("unquoted values keep backslashes", "A=x\\ny\\$z\n", ["A": "x\\ny\\"]),
        ValidCase("interpolation of earlier keys", "B=bee\nA=$B/${B}/x$B-y\n", ["A": "bee/bee/xbee-y"]),
        ValidCase("later keys are not visible yet", "A=[$B]\nB=1\n", ["A": "[]", "B": "1"]),
        ValidCase("longest name wins", "B=1\nB_C=2\nD=$B_C$B\n", ["D": "21"]),
        ValidCase(":- and - defaults", "E=\nA=${U:-d1}|${E:-d2}|${U-d3}|${E-d4}\n", ["A": "d1|d2|d3|"]),
        ValidCase(":+ and + alternatives", "E=\nS=v\nA=${S:+a1}|${E:+a2}|${U:+a3}|${S+a4}|${E+a5}|${U+a6}\n",
                  ["A": "a1|||a4|a5|"]),
        ValidCase("? and :? when set", "S=v\nE=\nA=${S:?m}|${S?m}|${E?m}\n", ["A": "v|v|"]),
        ValidCase("a lone $ stays literal", "A=x$\nB=$1\nC=a$ b\nD=$-\n", ["A": "x$", "B": "$1", "C": "a$ b", "D": "$-"]),
        ValidCase("nested defaults", "A=${U:-${V:-deep}}z\n", ["A": "deepz"]),
        ValidCase("two references on one line", "A=${U:-x} and ${V:-y}\n", ["A": "x and y"]),
        ValidCase("compose-go brace quirks", "A=${U:-x}y}\nB=${U-}x}\nC=${U:-{}}\n", ["A": "xy}", "B": "x}", "C": "{}"]),
        ValidCase("unset variable becomes empty", "A=${UNSET}x$UNSET\n", ["A": "x"]),
        ValidCase("process environment wins in interpolation", "A=file\nB=${A}\n", env: ["A": "proc"],
                  ["A": "proc", "B": "proc"]),
        ValidCase("process environment overrides the file", "A=${A:-self}-file\nB=$A\n", env: ["A": "proc"],
                  ["A": "proc", "B": "proc"]),
        ValidCase("self-reference without environment", "A=${A:-self}\n", ["A": "self"]),
        ValidCase("bare key is inherited", "A\nB\nC=$A\n", env: ["A": "from-env"], ["A": "from-env", "B": nil, "C": "from-env"]),
        ValidCase("CRLF line endings", "A = 1\r\nB=\"2\"\r\nC=x # c\r\n", ["A": "1", "B": "2", "C": "x"]),
        ValidCase("byte order mark", "\u{FEFF}A=1\n", ["A": "1"]),
        ValidCase("names with . - [ ] digits and letters", "A.B=1\nA-B=2\n1A=3\nA[0]=4\nété=5\n",
                  ["A.B": "1", "A-B": "2", "1A": "3", "A[0]": "4", "été": "5"]),
        ValidCase("the line goes on after a closing quote", "A=\"a\" B=2\nC='c'D=4\n", ["A": "a", "B": "2", "C": "c", "D": "4"]),
        ValidCase("a later assignment wins", "A=1\nA=2\n", ["A": "2"]),
        ValidCase("case-folded name characters", "K\u{212A}=1\nA=$K\u{212A}/${K\u{212A}}\n", ["A": "1/1"]),
        ValidCase("export alone on a line", "export\nA=1\n", ["A": "1", "export": nil]),
        ValidCase("blank key characters stay in the name", "A\tB=1\n", ["A\tB": "1", "A": nil]),
    ]

    @Test("valid .env files", arguments: valid)
    func validFile(_ c: ValidCase) {
        let doc = DotEnv.parse(c.text, environment: c.environment)
        #expect(doc.errors.isEmpty, "\(doc.errors)")
        let values = doc.effectiveValues(environment: c.environment)
        for (key, expected) in c.expected {
            #expect(values[key] == expected, "\(key)")
        }
    }

    struct InvalidCase: CustomTestStringConvertible, Sendable {
        let name: String
        let text: String
        let environment: [String: String]
        let code: DotEnv.Problem.Code
        let line: Int
        let column: Int
        init(_ name: String, _ text: String, env: [String: String] = [:], _ code: DotEnv.Problem.Code, _ line: Int, _ column: Int) {
            self.name = name; self.text = text; self.environment = env; self.code = code; self.line = line; self.column = column
        }
        var testDescription: String { name }
    }

    static let invalid: [InvalidCase] = [
        InvalidCase("space inside a key", "A B=1\n", .keyContainsSpace, 1, 1),
        InvalidCase("space inside a bare key", "OK=1\n  A B\n", .keyContainsSpace, 2, 3),
        InvalidCase("bad character in a key", "A$=1\n", .unexpectedCharacter, 1, 2),
        InvalidCase("quote in a key", "\"A\"=1\n", .unexpectedCharacter, 1, 1),
        InvalidCase("unterminated double quote", "X=1\nA=\"abc\nB=2\n", .unterminatedQuote, 2, 3),
        InvalidCase("unterminated single quote", "A='abc\n", .unterminatedQuote, 1, 3),
        InvalidCase("escaped closing quote", "A=\"abc\\\"\n", .unterminatedQuote, 1, 3),
        InvalidCase("empty braces", "A=${}\n", .invalidInterpolation, 1, 3),
        InvalidCase("bad operator", "A=${B:x}\n", .invalidInterpolation, 1, 3),
        InvalidCase("unclosed brace", "A=ok ${B\n", .invalidInterpolation, 1, 6),
        InvalidCase("brace name starting with a digit", "A=${1}\n", .invalidInterpolation, 1, 3),
        InvalidCase("reference split over lines", "A=\"${B:-x\ny}\"\n", .invalidInterpolation, 1, 3),
        InvalidCase(":? on an unset variable", "A=${B:?oops}\n", .requiredVariableMissing, 1, 3),
        InvalidCase(":? on an empty variable", "B=\nA=${B:?}\n", .requiredVariableMissing, 2, 3),
        InvalidCase("? on an unset variable", "A=${B?need B}\n", .requiredVariableMissing, 1, 3),
        InvalidCase("required inside an unused default", "A=${A:-${B:?inner}}\n", env: ["A": "set"], .requiredVariableMissing, 1, 3),
        InvalidCase("no name before =", "=1\n", .missingKey, 1, 1),
        InvalidCase("bare key at the end of the file", "A=1\nB", .missingValue, 2, 1),
    ]

    @Test("malformed .env files", arguments: invalid)
    func invalidFile(_ c: InvalidCase) {
        let doc = DotEnv.parse(c.text, environment: c.environment)
        #expect(doc.errors.count == 1, "\(doc.errors)")
        let e = doc.errors.first
        #expect(e?.code == c.code)
        #expect(e?.line == c.line)
        #expect(e?.column == c.column)
    }

    @Test func everyErrorIsReportedAndParsingGoesOn() {
        let text = "A B=1\nGOOD=1\nC$=2\nD=${}\nALSO_GOOD='x'\nE=${U:?missing}\nLAST=2\n"
        let doc = DotEnv.parse(text)
        #expect(doc.errors.map(\.code) == [.keyContainsSpace, .unexpectedCharacter, .invalidInterpolation, .requiredVariableMissing])
        #expect(doc.errors.map(\.line) == [1, 3, 4, 6])
        #expect(doc.values == ["GOOD": "1", "ALSO_GOOD": "x", "LAST": "2"])
    }

    @Test func messagesNeverRepeatValues() {
        let secret = "hunter2-secret"
        let texts = ["PASS=\"\(secret)", "PASS='\(secret)", "PASS=\(secret)${", "PASS=\"\(secret)${B:x}\"",
                     "PASS=\(secret)${U:?}"]
        for t in texts {
            let doc = DotEnv.parse(t)
            #expect(!doc.errors.isEmpty, "\(t)")
            for e in doc.errors { #expect(!e.message.contains(secret), "\(e.message)") }
        }
    }

    @Test func requiredMessageIsCarried() {
        let doc = DotEnv.parse("A=${DB_PASSWORD:?set DB_PASSWORD in .env}\n")
        #expect(doc.errors.first?.message.contains("required variable DB_PASSWORD is missing a value: set DB_PASSWORD in .env") == true)
    }

    @Test func unsetVariablesAreWarnings() {
        let doc = DotEnv.parse("A=$NOPE\nB=${NOPE:-fine}\n")
        #expect(doc.errors.isEmpty)
        #expect(doc.warnings.map(\.code) == [.unsetVariable])
        #expect(doc.warnings.first?.key == "A")
    }

    @Test func entriesCarryPositionsAndForms() {
        let doc = DotEnv.parse("# c\nexport A = 'x'\n  B=\"y\"\nC=z\n", environment: [:])
        #expect(doc.entries.map(\.key) == ["A", "B", "C"])
        #expect(doc.entries.map(\.form) == [.singleQuoted, .doubleQuoted, .unquoted])
        #expect(doc.entries.map(\.line) == [2, 3, 4])
        #expect(doc.entries.map(\.column) == [8, 3, 1])
        #expect(doc.entries.map(\.valueColumn) == [12, 5, 3])
    }

    @Test func bytesAreDecodedAsUTF8() {
        let doc = DotEnv.parse(Array("A=\u{e9}\n".utf8))
        #expect(doc.values["A"] == "\u{e9}")
    }

    @Test func deepNestingIsBounded() {
        let depth = 300
        let text = "A=" + String(repeating: "${U:-", count: depth) + "x" + String(repeating: "}", count: depth) + "\n"
        let doc = DotEnv.parse(text)
        #expect(doc.errors.first?.code == .nestedTooDeeply)
    }
}

@Suite("Interpolation")
struct InterpolationTests {
    func run(_ t: String, _ env: [String: String] = [:]) -> String? {
        let (v, f) = Interpolation.substitute(t, lookup: { env[$0] })
        return f == nil ? v : nil
    }

    @Test func escapesAndNames() {
        #expect(run("$$") == "$")
        #expect(run("$$$$") == "$$")
        #expect(run("a$$b") == "a$b")
        #expect(run("$A$B", ["A": "1", "B": "2"]) == "12")
        #expect(run("${A}${B}", ["A": "1", "B": "2"]) == "12")
        #expect(run("$a_1", ["a_1": "x"]) == "x")
        #expect(run("${a}", ["a": "lower"]) == "lower")
    }

    @Test func valuesAreNotInterpolatedAgain() {
        #expect(run("${A}", ["A": "$B", "B": "no"]) == "$B")
        #expect(run("${U:-$$}", [:]) == "$")
    }

    @Test func operatorsOnSetEmptyAndUnset() {
        let env = ["S": "s", "E": ""]
        #expect(run("${S:-d}|${E:-d}|${U:-d}", env) == "s|d|d")
        #expect(run("${S-d}|${E-d}|${U-d}", env) == "s||d")
        #expect(run("${S:+a}|${E:+a}|${U:+a}", env) == "a||")
        #expect(run("${S+a}|${E+a}|${U+a}", env) == "a|a|")
        #expect(run("${S:?m}", env) == "s")
        #expect(run("${E:?m}", env) == nil)
        #expect(run("${E?m}", env) == "")
        #expect(run("${U?m}", env) == nil)
    }

    @Test func defaultsMayHoldOperatorsAndReferences() {
        #expect(run("${U:-a-b?c}") == "a-b?c")
        #expect(run("${U:-${V:-x}-y}") == "x-y")
        #expect(run("${U:-http://h:1/p}") == "http://h:1/p")
    }

    @Test func failuresPointAtTheDollar() {
        let (_, f) = Interpolation.substitute("abc ${", lookup: { _ in nil })
        #expect(f == .invalidTemplate(offset: 4))
        let (_, g) = Interpolation.substitute("x${P:?need P}", lookup: { _ in nil })
        #expect(g == .requiredVariableMissing(name: "P", message: "need P", offset: 1))
    }

    @Test func throwingFormUsesWireError() {
        #expect(throws: WireError.self) { try Interpolation.interpolate("${", lookup: { _ in nil }) }
        #expect((try? Interpolation.interpolate("${A}", lookup: { _ in "v" })) == "v")
    }

    @Test func expandEscapesTable() {
        func e(_ s: String) -> String { String(String.UnicodeScalarView(Interpolation.expandEscapes(Array(s.unicodeScalars)))) }
        #expect(e("\\n\\t\\\\") == "\n\t\\")
        #expect(e("\\$") == "$$")
        #expect(e("\\0101") == "A")
        #expect(e("\\01234") == "S4")
        #expect(e("trailing\\") == "trailing\\")
        #expect(e("\\x41") == "\\x41")
    }

    // MARK: writing values back

    /// `DotEnv.quote` is the one way sagedev writes a value (`env`, `init`, `env.example`): whatever the value, the
    /// parser gives it back unchanged. Random values over the characters that matter, from a fixed seed.
    @Test func quotedValuesReadBackUnchanged() {
        let alphabet: [Character] = ["a", "Z", "0", " ", "\t", "\n", "\r", "$", "{", "}", "#", "'", "\"", "\\", "=", ":", "/", "@", "ü", "%"]
        var r = SeededRandom(seed: 7)
        for i in 0..<3000 {
            let v = String((0..<Int(r.next() % 12)).map { _ in alphabet[Int(r.next() % UInt64(alphabet.count))] })
            let text = "K=\(DotEnv.quote(v))\nNEXT=1\n"
            let doc = DotEnv.parse(text)
            #expect(doc.values["K"] == v && doc.values["NEXT"] == "1", "case \(i): \(v.debugDescription) written as \(DotEnv.quote(v).debugDescription)")
            if doc.values["K"] != v { break }
        }
    }

    @Test func plainValuesAreWrittenBare() {
        #expect(DotEnv.quote("postgres://u:p@127.0.0.1:5432/db") == "postgres://u:p@127.0.0.1:5432/db")
        #expect(DotEnv.quote("") == "")
        #expect(DotEnv.quote("$PORT") == "'$PORT'")
    }
}
