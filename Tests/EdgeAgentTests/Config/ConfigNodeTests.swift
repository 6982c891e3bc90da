import EdgeAgentCore
import Foundation
import Testing
import Yams

@testable import EdgeAgent

/// The configuration's YAML read from libyaml's events gives the tree Yams composes (texts,
/// lists, mappings, lines, columns, which key a name finds), and what that reading leaves out
/// is composed by Yams as before.
@Suite struct ConfigNodeTests {
    /// The same tree as Yams' node for node (content, line, column, which single values are
    /// strings), and in every mapping the same keys found by name, for every name a key could be
    /// (a word that is a string to YAML). A plain untagged single value is a string here whatever
    /// its text, where Yams may read it as a number, a truth value or null (`7`, `true`, `~`).
    func same(_ a: ConfigNode, _ b: Node, at path: String = "") -> Bool {
        guard a.line == b.mark?.line, a.column == b.mark?.column else {
            Issue.record("\(path): \(a.line):\(a.column) against \(b.mark.map { "\($0)" } ?? "none")")
            return false
        }
        switch (a.content, b) {
        case let (.scalar(x), .scalar(y)):
            if x != y.string { Issue.record("\(path): '\(x)' against '\(y.string)'") }
            let isString = y == Node.Scalar(y.string, Tag(.str))
            let plain = y.style == .plain && a.isString && Node.Scalar(y.string) != Node.Scalar(y.string, Tag(.str))
            if a.isString != isString && !plain { Issue.record("\(path): string \(a.isString), to Yams \(isString)") }
            return x == y.string && (a.isString == isString || plain)
        case let (.sequence(x), .sequence(y)):
            guard x.count == y.count else { return false }
            return zip(x, y).enumerated().allSatisfy { same($1.0, $1.1, at: "\(path)[\($0)]") }
        case let (.mapping(x), .mapping(y)):
            guard x.pairs.count == y.count else { return false }
            let names = x.keys.compactMap(\.string).filter {
                $0.wholeMatch(of: /[a-z][a-z_]*/) != nil
                    && !["true", "false", "yes", "no", "on", "off", "null"].contains($0)
            }
            for name in names where (x[name] == nil) != (y[name] == nil) {
                Issue.record("\(path): '\(name)' found \(x[name] != nil), by Yams \(y[name] != nil)")
                return false
            }
            return zip(x.pairs, y).allSatisfy {
                same($0.key, $1.key, at: path + ".key")
                    && same($0.value, $1.value, at: "\(path).\($0.key.string ?? "?")")
            }
        default:
            Issue.record("\(path): \(a.content) against \(b)")
            return false
        }
    }

    /// The root from libyaml's events; nil where the file is left to Yams.
    func fromEvents(_ text: String) -> ConfigNode?? {
        var text = text
        switch text.withUTF8({ ConfigComposer($0).document() }) {
        case let .root(root): return .some(root)
        case .byYams: return nil
        }
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// Quoting, tags, block and flow styles, comments, and text wider than one byte a character
    /// (libyaml counts columns in characters).
    static let styles = """
        # a comment
        version: 1
        "agent": { id: 'a', site: "Größe ✓", line: l, !!str data_dir: ./d }
        !!int devices: []
        ! historian:
          - name: "ä"
            directory: |
              /srv/
            tags: { "1": x, 2: y, ~: z, true: w }
        machines:
          - name: >-
              folded
              text
            state: { tag: !!str d.t, map: { 0: stopped } }
        sinks: [ { name: "mw ✓", http: { url: "http://h/e" } }, { name: null }, { name: } ]
        """

    /// The example configurations and the fixtures, by name.
    func examples() throws -> [String: String] {
        var texts = ["styles": Self.styles]
        for name in Fixtures.files(in: "bad-configs", ending: ".yaml") where name != "broken-yaml.yaml" {
            texts[name] = Fixtures.text("bad-configs/" + name)
        }
        texts["spec-example.yaml"] = Fixtures.text("configs/spec-example.yaml")
        let examples = try FileManager.default.contentsOfDirectory(atPath: Self.repository + "/edge-config")
        #expect(examples.count >= 8)
        for name in examples {
            texts[name] = try String(contentsOfFile: Self.repository + "/edge-config/" + name, encoding: .utf8)
        }
        return texts
    }

    @Test func readsEveryExampleConfigurationAsYamsComposesIt() throws {
        var fromTheEvents = 0
        for (name, text) in try examples() {
            let yams = try #require(try Yams.compose(yaml: text))
            #expect(same(ConfigNode(yams), yams), "\(name) through Yams")
            guard let events = fromEvents(text) else { continue }
            #expect(same(try #require(events, "\(name) has a document"), yams), "\(name)")
            fromTheEvents += 1
        }
        #expect(fromTheEvents >= 8)
    }

    /// With an anchor on the root and a list shared through an alias, each example is left to
    /// Yams, and its nodes give the tree Yams composes.
    @Test func readsEveryExampleConfigurationWithAnAnchorAsYamsComposesIt() throws {
        let texts = try examples().filter { $0.value.hasPrefix("#") || $0.value.hasPrefix("version") }
        #expect(texts.count >= 8)
        for (name, text) in texts {
            let anchored = "--- &root\n" + text + "\nx_shared: &shared [ { a: 1 }, b ]\nx_again: *shared\n"
            #expect(fromEvents(anchored) == nil, "\(name) is left to Yams")
            let node = try #require(try ConfigNode.compose(anchored), "\(name)")
            #expect(same(node, try #require(try Yams.compose(yaml: anchored))), "\(name)")
            #expect(node.mapping?["x_again"]?.sequence?.count == 2, "\(name)")
        }
    }

    @Test func anAnchorGivenAgainNamesTheNodeItIsGivenTo() throws {
        let text = "a: &x [ 1 ]\nb: *x\nc: &x [ 2 ]\nd: *x\ne: [ &x 3, *x ]"
        let node = try #require(try ConfigNode.compose(text)?.mapping)
        let items = ["a", "b", "c", "d", "e"].map { node[$0]?.sequence?.compactMap(\.string) }
        #expect(items == [["1"], ["1"], ["2"], ["2"], ["3", "3"]])
        let yams = try #require(try Yams.compose(yaml: text))
        #expect(same(ConfigNode(yams), yams))
    }

    /// Nine levels of lists of ten aliases to the level below: a billion values when each alias
    /// is copied, a few hundred nodes when shared.
    @Test(.timeLimit(.minutes(1))) func aFileOfAliasesToAliasesIsReadInTheTimeOfItsText() throws {
        var text = """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks: [ { name: mw, http: { url: "http://h/e" } } ]
            x0: &x0 [a,a,a,a,a,a,a,a,a,a]

            """
        for level in 1...8 {
            text += "x\(level): &x\(level) [\(Array(repeating: "*x\(level - 1)", count: 10).joined(separator: ","))]\n"
        }
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "l.yaml") }
        #expect(error?.issues.map(\.message) == (0...8).map { "unknown key 'x\($0)'" })
        #expect(error?.issues.map(\.line) == Array(4...12))
    }

    /// Yams' scalars drop one leading byte order mark (U+FEFF), written or escaped.
    @Test func aByteOrderMarkLeadingASingleValueIsLeftOutAsYamsDoes() throws {
        let text = """
            version: 1
            "\\uFEFFagent": { id: "\u{FEFF}a", site: "\\uFEFF\\uFEFFs", line: "l\\uFEFF" }
            sinks: [ { name: "\\uFEFFmw", http: { url: "http://h/e" } }, { name: mw, http: { url: "http://h/e" } } ]
            """
        let events = try #require(fromEvents(text) ?? nil)
        let yams = try #require(try Yams.compose(yaml: text))
        #expect(same(events, yams))
        let agent = try #require(events.mapping?["agent"]?.mapping)
        #expect(["id", "site", "line"].map { agent[$0]?.string } == ["a", "\u{FEFF}s", "l\u{FEFF}"])
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "b.yaml") }
        #expect(error?.issues.map(\.message) == ["the name 'mw' is used twice in sinks"])
    }

    @Test func findsATaggedKeyByItsNameWhereYamsDoes() throws {
        let text = """
            { plain: 1, "quoted": 2, !!str tagged: 3, ! bare: 4, !!int number: 5, !custom other: 6, 7: 7 }
            """
        let events = try #require((fromEvents(text) ?? nil)?.mapping)
        let yams = try #require(try Yams.compose(yaml: text)?.mapping)
        for name in ["plain", "quoted", "tagged", "bare", "number", "other", "7", "missing"] {
            #expect(events[name]?.string == yams[name]?.string, "\(name)")
        }
        #expect(events["plain"]?.string == "1" && events["number"] == nil)
    }

    @Test func leavesAnchorsAliasesRepeatedKeysAndBrokenFilesToYams() {
        for text in [
            "a: &x 1\nb: *x",
            "a: [ &x { b: 1 } ]",
            "a: 1\na: 2",
            "? [ a ]\n: 1",
            "a: 1\n---\nb: 2",
            "a: [ 1",
            "a: b: c",
        ] {
            #expect(fromEvents(text) == nil, "\(text)")
        }
        for empty in ["", "# only a comment\n"] {
            #expect(fromEvents(empty).map { $0 == nil } == true, "a file without a document has no root")
        }
    }

    @Test func aDeviceSharingAnotherOnesTagsThroughAnAliasReadsAsBefore() throws {
        let config = try ConfigLoader.parse(
            """
            version: 1
            agent: { id: a, site: s, line: l }
            devices:
              - name: d0
                modbus: { tcp: { host: 127.0.0.1 } }
                tags: &tags
                  - { name: t0, area: holding, address: 0, type: uint16 }
                  - { name: t1, area: holding, address: 1, type: uint16 }
              - name: d1
                modbus: { tcp: { host: 127.0.0.1 } }
                tags: *tags
            sinks: [ { name: mw, http: { url: "http://h/e" } } ]
            """, file: "a.yaml")
        #expect(config.devices.map { $0.tags.map(\.name) } == [["t0", "t1"], ["t0", "t1"]])
    }

    @Test func aKeyGivenTwiceIsTheSameYAMLErrorAsBefore() throws {
        let text = """
            version: 1
            agent: { id: a, site: s, line: l }
            agent: { id: b, site: s, line: l }
            """
        let yams = try #require(#expect(throws: YamlError.self) { try Yams.compose(yaml: text) })
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "d.yaml") }
        #expect(error?.issues == [ConfigLoader.yamlIssue(yams, file: "d.yaml")])
        #expect(error?.description.contains("duplicated key(s): 'agent'") == true)
    }
}
