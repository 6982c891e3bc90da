/// An event's CloudEvents `type` and the drop class the outbox derives from it (SPEC 5.3).
public struct EventType: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String
    /// Derived from the name once: the outbox reads it for every event it appends.
    public let dropClass: DropClass
    public init(_ name: String) {
        self.name = name
        self.dropClass = Self.dropClass(of: name)
    }
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { name }

    public static let stateChanged: EventType = "machine.state.changed"
    public static let downtimeStarted: EventType = "machine.downtime.started"
    public static let downtimeEnded: EventType = "machine.downtime.ended"
    public static let productionCompleted: EventType = "production.completed"
    public static let productionScrapped: EventType = "production.scrapped"
    public static let materialConsumed: EventType = "material.consumed"
    public static let qualityRaised: EventType = "quality.exception.raised"
    public static let qualityCleared: EventType = "quality.exception.cleared"
    public static let workOrderStarted: EventType = "work_order.started"
    public static let workOrderCompleted: EventType = "work_order.completed"
    public static let deviceConnectionChanged: EventType = "device.connection.changed"
    public static let tagChanged: EventType = "tag.changed"
    public static let eventsDropped: EventType = "outbox.events.dropped"
    public static let outboxCreated: EventType = "outbox.created"

    /// Every type the agent emits; sinks' `types` patterns are checked against these.
    public static let all: [EventType] = [
        .stateChanged, .downtimeStarted, .downtimeEnded, .productionCompleted, .productionScrapped,
        .materialConsumed, .qualityRaised, .qualityCleared, .workOrderStarted, .workOrderCompleted,
        .deviceConnectionChanged, .tagChanged, .eventsDropped, .outboxCreated,
    ]

    public enum DropClass: Int, Sendable, Comparable {
        case critical = 0, normal = 1, low = 2
        public static func < (a: DropClass, b: DropClass) -> Bool { a.rawValue < b.rawValue }
    }

    static func dropClass(of name: String) -> DropClass {
        let critical = ["production.", "machine.downtime.", "material.", "quality.", "work_order."]
        if critical.contains(where: name.hasPrefix) { return .critical }
        if name == "tag.changed" { return .low }
        return .normal
    }
}

/// A sink's `types` filter: glob patterns where `*` matches any run of characters and every
/// other character only itself. The outbox selects with SQLite's `GLOB`, which also gives `?`
/// and `[` a meaning; `sqlPatterns` escapes them, so both select the same events.
public struct TypeFilter: Sendable, Equatable {
    public let patterns: [String]
    public init(_ patterns: [String]) { self.patterns = patterns }
    public static let all = TypeFilter([])

    public func matches(_ type: String) -> Bool {
        patterns.isEmpty || patterns.contains { Self.glob($0[...], type[...]) }
    }

    /// The patterns as `GLOB` operands with this filter's meaning: `?` as `[?]`, `[` as `[[]`.
    public var sqlPatterns: [String] {
        patterns.map { pattern in
            pattern.reduce(into: "") { out, c in
                switch c {
                case "?": out += "[?]"
                case "[": out += "[[]"
                default: out.append(c)
                }
            }
        }
    }

    static func glob(_ pattern: Substring, _ text: Substring) -> Bool {
        guard let first = pattern.first else { return text.isEmpty }
        if first == "*" {
            let rest = pattern.dropFirst()
            var t = text
            while true {
                if glob(rest, t) { return true }
                if t.isEmpty { return false }
                t = t.dropFirst()
            }
        }
        guard let c = text.first, c == first else { return false }
        return glob(pattern.dropFirst(), text.dropFirst())
    }
}
