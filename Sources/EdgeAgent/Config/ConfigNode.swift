import CYaml
import Yams

/// A node of the configuration file's YAML: a single value, a list or a mapping, and where it
/// starts (line and column from 1, as libyaml counts them).
///
/// Read straight from libyaml's events (`compose`), a node holds its text or children and its
/// place, nothing more: a large line's configuration (tens of thousands of values) takes a
/// fraction of the memory and time of Yams' nodes, which each hold a tag object, a style and an
/// anchor, and whose keys are compared through the tag resolver's regular expressions. The files
/// that use what this reading leaves out (anchors and aliases, a key that is not a single value,
/// a key given twice, more than one document) and the files that are not YAML are composed by
/// Yams, as before: the same tree, the same errors.
struct ConfigNode {
    enum Content {
        case scalar(String)
        case sequence([ConfigNode])
        case mapping(Mapping)
    }

    /// The pairs of a mapping, in file order.
    struct Mapping: Sequence {
        let pairs: [(key: ConfigNode, value: ConfigNode)]

        /// The value of the key named `name`: a single value with that text that is a string here
        /// (`isString`). For a name YAML reads as a string (the loader looks up only such names:
        /// words, never numbers, truth values or null) this is the key Yams' lookup by name finds.
        subscript(name: String) -> ConfigNode? {
            pairs.first { $0.key.isString && $0.key.string == name }?.value
        }

        var keys: [ConfigNode] { pairs.map(\.key) }

        func makeIterator() -> IndexingIterator<[(key: ConfigNode, value: ConfigNode)]> { pairs.makeIterator() }
    }

    let content: Content
    private let startLine: Int32
    private let startColumn: Int32
    /// A single value that may name a key: untagged, quoted, or tagged `!!str` or `!`. From Yams'
    /// nodes, an untagged key is one only where Yams read it as a string (`7` is a number there).
    let isString: Bool

    init(_ content: Content, line: Int, column: Int, isString: Bool = false) {
        self.content = content
        startLine = Int32(clamping: line)
        startColumn = Int32(clamping: column)
        self.isString = isString
    }

    var line: Int { Int(startLine) }
    var column: Int { Int(startColumn) }

    var string: String? { if case let .scalar(text) = content { text } else { nil } }
    var sequence: [ConfigNode]? { if case let .sequence(items) = content { items } else { nil } }
    var mapping: Mapping? { if case let .mapping(pairs) = content { pairs } else { nil } }
    var isMapping: Bool { mapping != nil }
}

extension ConfigNode {
    /// The root of the file's single document; nil for a file without one.
    static func compose(_ text: String) throws -> ConfigNode? {
        var text = text
        switch text.withUTF8({ ConfigComposer($0).document() }) {
        case let .root(root): return root
        case .byYams: return try Yams.compose(yaml: text).map(ConfigNode.init)
        }
    }

    /// The same tree from Yams' nodes. Its composer resolves every alias to the node it names, so
    /// no alias node is left (one would read as an empty list). An alias to a list of aliases
    /// makes Yams' tree far larger than the file, so each list and mapping is converted once and
    /// shared where an alias repeats it: the tree stays the size of the file.
    init(_ node: Node) {
        var converted: [ObjectIdentifier: ConfigNode] = [:]
        self = Self.converting(node, &converted)
    }

    /// The tags of a single value that may name a key, on Yams' nodes.
    private static let stringTags: Set<String> = [
        Tag.Name.implicit.rawValue, Tag.Name.str.rawValue, Tag.Name.nonSpecific.rawValue,
    ]

    /// Yams gives each node it composes a tag object of its own, and an alias the node it names,
    /// tag and all: the tag object tells a list or mapping from another one.
    private static func converting(_ node: Node, _ converted: inout [ObjectIdentifier: ConfigNode]) -> ConfigNode {
        let line = node.mark?.line ?? 1
        let column = node.mark?.column ?? 1
        let identity = node.scalar == nil ? ObjectIdentifier(node.tag) : nil
        if let identity, let node = converted[identity] { return node }
        let result: ConfigNode
        switch node {
        case let .scalar(scalar):
            result = ConfigNode(
                .scalar(scalar.string), line: line, column: column,
                isString: stringTags.contains(scalar.tag.rawValue))
        case let .sequence(items):
            result = ConfigNode(.sequence(items.map { converting($0, &converted) }), line: line, column: column)
        case let .mapping(pairs):
            result = ConfigNode(
                .mapping(
                    Mapping(pairs: pairs.map { (converting($0.key, &converted), converting($0.value, &converted)) })),
                line: line, column: column)
        case .alias:
            result = ConfigNode(.sequence([]), line: line, column: column)
        }
        if let identity { converted[identity] = result }
        return result
    }
}

/// Builds `ConfigNode`s from libyaml's events over the whole text, or leaves the file to Yams
/// (see `ConfigNode`).
final class ConfigComposer {
    private var parser = yaml_parser_t()
    private var event = yaml_event_t()

    init(_ text: UnsafeBufferPointer<UInt8>) {
        yaml_parser_initialize(&parser)
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, text.baseAddress, text.count)
    }

    deinit {
        yaml_event_delete(&event)
        yaml_parser_delete(&parser)
    }

    /// The next event into `event`; false on an error in the text.
    private func next() -> Bool {
        yaml_event_delete(&event)
        return yaml_parser_parse(&parser, &event) == 1
    }

    enum Document {
        /// The single document's root; nil when the file holds no document.
        case root(ConfigNode?)
        case byYams
    }

    func document() -> Document {
        guard next(), event.type == YAML_STREAM_START_EVENT, next() else { return .byYams }
        if event.type == YAML_STREAM_END_EVENT { return .root(nil) }
        guard event.type == YAML_DOCUMENT_START_EVENT, next(), let root = node(), next(),
            event.type == YAML_DOCUMENT_END_EVENT, next(), event.type == YAML_STREAM_END_EVENT
        else { return .byYams }
        return .root(root)
    }

    /// The node that starts at the current event; the current event is its last afterwards.
    private func node() -> ConfigNode? {
        let line = Int(event.start_mark.line) + 1
        let column = Int(event.start_mark.column) + 1
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            guard scalar.anchor == nil else { return nil }
            var bytes = UnsafeBufferPointer(start: scalar.value, count: scalar.length)
            // One leading byte order mark is not part of the text, as in Yams' scalars.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = UnsafeBufferPointer(rebasing: bytes.dropFirst(3)) }
            let text = String(decoding: bytes, as: UTF8.self)
            let tag = scalar.tag.map { String(cString: $0) }
            let isString = scalar.quoted_implicit == 1 || tag == nil || tag == "!" || tag == Tag.Name.str.rawValue
            return ConfigNode(.scalar(text), line: line, column: column, isString: isString)
        case YAML_SEQUENCE_START_EVENT:
            guard event.data.sequence_start.anchor == nil else { return nil }
            var items: [ConfigNode] = []
            while next(), event.type != YAML_SEQUENCE_END_EVENT {
                guard let item = node() else { return nil }
                items.append(item)
            }
            guard event.type == YAML_SEQUENCE_END_EVENT else { return nil }
            return ConfigNode(.sequence(items), line: line, column: column)
        case YAML_MAPPING_START_EVENT:
            guard event.data.mapping_start.anchor == nil else { return nil }
            var pairs: [(key: ConfigNode, value: ConfigNode)] = []
            var names = Set<String>()
            while next(), event.type != YAML_MAPPING_END_EVENT {
                guard let key = node(), let name = key.string, names.insert(name).inserted, next(), let value = node()
                else { return nil }
                pairs.append((key, value))
            }
            guard event.type == YAML_MAPPING_END_EVENT else { return nil }
            return ConfigNode(.mapping(.init(pairs: pairs)), line: line, column: column)
        default:
            return nil
        }
    }
}
