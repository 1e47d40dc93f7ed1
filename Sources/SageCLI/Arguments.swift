import SageCore

/// The result of parsing argv against a command's `OptionSpec`s.
public struct ParsedArguments: Sendable {
    public var flags: Set<String> = []
    public var values: [String: [String]] = [:]
    public var positionals: [String] = []

    public func has(_ long: String) -> Bool { flags.contains(long) }
    public func value(_ long: String) -> String? { values[long]?.last }

    /// An integer option, with a usage error naming the option when it is not one.
    public func int(_ long: String, range: ClosedRange<Int>) throws -> Int? {
        guard let raw = value(long) else { return nil }
        guard let n = Int(raw), range.contains(n) else {
            throw CLIError.usage("\(long) takes a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(raw)\"")
        }
        return n
    }
    public func double(_ long: String, range: ClosedRange<Double>) throws -> Double? {
        guard let raw = value(long) else { return nil }
        guard let n = Double(raw), range.contains(n) else {
            throw CLIError.usage("\(long) takes a number from \(range.lowerBound) to \(range.upperBound), not \"\(raw)\"")
        }
        return n
    }
}

public enum ArgumentParser {
    /// Parses `args` (without the command name). Unknown options are usage errors with a suggestion.
    public static func parse(_ args: [String], options: [OptionSpec], command: String) throws -> ParsedArguments {
        var out = ParsedArguments()
        var i = 0
        func spec(long: String) -> OptionSpec? { options.first { $0.long == long } }
        func spec(short: Character) -> OptionSpec? { options.first { $0.short == short } }
        while i < args.count {
            let a = args[i]; i += 1
            if a == "--" { out.positionals += args[i...]; break }
            if a.hasPrefix("--") {
                var name = a, inline: String? = nil
                if let eq = a.firstIndex(of: "=") { name = String(a[..<eq]); inline = String(a[a.index(after: eq)...]) }
                guard let s = spec(long: name) else {
                    let hint = Suggestion.closest(to: name, among: options.map(\.long) + ["--help"]).map { "; did you mean \($0)?" } ?? ""
                    throw CLIError.usage("unknown option \(name) for 'sagedev \(command)'\(hint) (see sagedev \(command) --help)")
                }
                if let vn = s.valueName {
                    let v: String
                    if let inline { v = inline } else {
                        guard i < args.count else { throw CLIError.usage("\(name) needs a value (\(vn))") }
                        v = args[i]; i += 1
                    }
                    out.values[s.long, default: []].append(v)
                } else {
                    if inline != nil { throw CLIError.usage("\(name) takes no value") }
                    out.flags.insert(s.long)
                }
            } else if a.hasPrefix("-") && a.count > 1 && !a.dropFirst().allSatisfy({ $0.isNumber }) {
                var chars = Array(a.dropFirst())
                while !chars.isEmpty {
                    let c = chars.removeFirst()
                    guard let s = spec(short: c) else {
                        throw CLIError.usage("unknown option -\(c) for 'sagedev \(command)' (see sagedev \(command) --help)")
                    }
                    if let vn = s.valueName {
                        let v: String
                        if !chars.isEmpty { v = String(chars); chars = [] } else {
                            guard i < args.count else { throw CLIError.usage("-\(c) needs a value (\(vn))") }
                            v = args[i]; i += 1
                        }
                        out.values[s.long, default: []].append(v)
                    } else { out.flags.insert(s.long) }
                }
            } else {
                out.positionals.append(a)
            }
        }
        return out
    }
}
