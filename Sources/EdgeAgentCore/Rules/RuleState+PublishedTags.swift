/// The last published value and quality of each `publish: on_change` tag, grouped by device (the
/// part of a tag's name before its last dot: a tag's own name has none, a device's may). A reading
/// is one device's poll: the engine copies and changes only that device's tags, and a commit
/// stores only that device's row (`StoredRuleState`), however many tags the other devices publish.
///
/// Read and written by tag, as a dictionary; coded as one object of every tag, the form a store
/// written before the grouping holds.
extension RuleState {
    public struct PublishedTags: Codable, Equatable, Sendable {
        /// Each device's tags, by the device's part of their names; a device without tags is absent.
        public private(set) var devices: [Substring: [String: Published]] = [:]

        public init() {}

        /// The device a tag belongs to: its name up to the last dot (the whole name if it has none).
        public static func device(of tag: String) -> Substring {
            tag[..<(tag.utf8.lastIndex(of: UInt8(ascii: ".")) ?? tag.endIndex)]
        }

        public subscript(tag: String) -> Published? {
            get { devices[Self.device(of: tag)]?[tag] }
            set {
                let device = Self.device(of: tag)
                devices[device, default: [:]][tag] = newValue
                if newValue == nil, devices[device]?.isEmpty == true { devices[device] = nil }
            }
        }

        public var isEmpty: Bool { devices.isEmpty }

        /// Every tag held, device by device.
        public var tags: [String] { devices.values.flatMap(\.keys) }

        public init(from decoder: any Decoder) throws {
            for (tag, published) in try decoder.singleValueContainer().decode([String: Published].self) {
                self[tag] = published
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(devices.values.reduce(into: [String: Published]()) { $0.merge($1) { $1 } })
        }
    }
}
