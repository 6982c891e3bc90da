import EdgeAgentCore
import Foundation

/// Walks the YAML tree with its source marks, collecting every issue instead of stopping at the first.
final class ConfigReader {
    let file: String
    let environment: [String: String]
    private(set) var issues: [ConfigIssue] = []

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    func report(_ node: ConfigNode?, _ path: String, _ message: String) {
        issues.append(
            ConfigIssue(file: file, line: node?.line ?? 1, column: node?.column ?? 1, path: path, message: message))
    }

    /// A scalar's text with `${NAME}` replaced from the environment.
    func text(_ node: ConfigNode, _ path: String) -> String? {
        guard let scalar = node.string else {
            report(node, path, "expected a single value, found a \(node.isMapping ? "mapping" : "list")")
            return nil
        }
        var result = ""
        var rest = Substring(scalar)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                report(node, path, "unclosed ${ in value")
                return nil
            }
            let name = String(rest[start.upperBound..<end])
            guard let value = environment[name] else {
                report(node, path, "environment variable \(name) is not set")
                return nil
            }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }
}

/// A mapping in the configuration: typed accessors that report where a value is wrong.
struct MapNode {
    let reader: ConfigReader
    let node: ConfigNode
    let path: String
    let mapping: ConfigNode.Mapping

    /// Nil (with an issue) when `node` is not a mapping. Unknown keys are reported with a hint.
    init?(_ node: ConfigNode, path: String, reader: ConfigReader, allowed: [String]) {
        guard let mapping = node.mapping else {
            reader.report(node, path, "expected a mapping")
            return nil
        }
        self.reader = reader
        self.node = node
        self.path = path
        self.mapping = mapping
        for key in mapping.keys {
            let name = key.string ?? "?"
            guard !allowed.contains(name) else { continue }
            let hint = ConfigValues.suggestion(for: name, among: allowed).map { "; did you mean '\($0)'?" } ?? ""
            reader.report(key, sub(name), "unknown key '\(name)'\(hint)")
        }
    }

    func sub(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    subscript(key: String) -> ConfigNode? { mapping[key] }

    func has(_ key: String) -> Bool { mapping[key] != nil }

    func missing(_ key: String) {
        reader.report(node, sub(key), "required key '\(key)' is missing")
    }

    func string(_ key: String, required: Bool = false) -> String? {
        guard let value = mapping[key] else {
            if required { missing(key) }
            return nil
        }
        return reader.text(value, sub(key))
    }

    func int(_ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        guard let text = string(key, required: required) else { return nil }
        guard let v = Int(text), range.contains(v) else {
            reader.report(
                mapping[key], sub(key),
                "expected a whole number from \(range.lowerBound) to \(range.upperBound), found '\(text)'")
            return nil
        }
        return v
    }

    func double(_ key: String) -> Double? {
        guard let text = string(key) else { return nil }
        guard let v = Double(text), v.isFinite else {
            reader.report(mapping[key], sub(key), "expected a number, found '\(text)'")
            return nil
        }
        return v
    }

    func duration(_ key: String, required: Bool = false, positive: Bool = true) -> Duration? {
        guard let text = string(key, required: required) else { return nil }
        guard let d = ConfigValues.duration(text), !positive || d > .zero else {
            reader.report(
                mapping[key], sub(key), "expected a duration with a unit (250ms, 5s, 10m, 72h), found '\(text)'")
            return nil
        }
        return d
    }

    func size(_ key: String, minimum: Int64 = 0) -> Int64? {
        guard let text = string(key) else { return nil }
        guard let v = ConfigValues.size(text) else {
            reader.report(mapping[key], sub(key), "expected a size (512KiB, 1MiB, 1GiB), found '\(text)'")
            return nil
        }
        guard v >= minimum else {
            reader.report(mapping[key], sub(key), "must be at least \(minimum) bytes, found '\(text)'")
            return nil
        }
        return v
    }

    func oneOf(_ key: String, _ choices: [String], required: Bool = false) -> String? {
        guard let text = string(key, required: required) else { return nil }
        guard choices.contains(text) else {
            let hint = ConfigValues.suggestion(for: text, among: choices).map { "; did you mean '\($0)'?" } ?? ""
            reader.report(
                mapping[key], sub(key), "expected one of \(choices.joined(separator: ", ")), found '\(text)'\(hint)")
            return nil
        }
        return text
    }

    func map(_ key: String, allowed: [String], required: Bool = false) -> MapNode? {
        guard let value = mapping[key] else {
            if required { missing(key) }
            return nil
        }
        return MapNode(value, path: sub(key), reader: reader, allowed: allowed)
    }

    /// The items of a list, each with its path (`devices[2]`).
    func list(_ key: String) -> [(node: ConfigNode, path: String)] {
        guard let value = mapping[key] else { return [] }
        guard let sequence = value.sequence else {
            reader.report(value, sub(key), "expected a list")
            return []
        }
        return sequence.enumerated().map { ($0.element, "\(sub(key))[\($0.offset)]") }
    }

    func strings(_ key: String) -> [String]? {
        guard mapping[key] != nil else { return nil }
        return list(key).compactMap { reader.text($0.node, $0.path) }
    }

    /// A mapping of free-form keys to text values (headers, tag maps), in file order.
    func pairs(_ key: String) -> [(key: String, value: String, node: ConfigNode)] {
        guard let value = mapping[key] else { return [] }
        guard let inner = value.mapping else {
            reader.report(value, sub(key), "expected a mapping")
            return []
        }
        return inner.compactMap { k, v in
            guard let name = k.string, let text = reader.text(v, "\(sub(key)).\(name)") else { return nil }
            return (name, text, k)
        }
    }

    /// A secret given inline as `key` or read from the file named by `key_file`.
    func secret(_ key: String) -> String? {
        let inline = string(key)
        guard let fileNode = mapping[key + "_file"], let path = reader.text(fileNode, sub(key + "_file")) else {
            return inline
        }
        if inline != nil {
            reader.report(fileNode, sub(key + "_file"), "give either '\(key)' or '\(key)_file', not both")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            reader.report(fileNode, sub(key + "_file"), "cannot read the secret file \(path)")
            return nil
        }
        return text.trimmingCharacters(in: .newlines)
    }
}
