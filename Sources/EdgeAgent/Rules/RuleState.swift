/// Everything the rules remember, stored in the outbox in the same transaction as the events
/// it produced: after a crash the engine resumes exactly where the last commit left it.
public struct RuleState: Codable, Equatable, Sendable {
    /// Latest good values of the context tags (reason codes, work orders, state bits).
    public var values: [String: TagValue] = [:]
    public var machines: [String: Machine] = [:]
    /// Last published value and quality of `publish: on_change` tags.
    public var published: [String: Published] = [:]

    public init() {}

    public struct Machine: Codable, Equatable, Sendable {
        public var state: String?
        public var since: Timestamp?
        public var downtime: Downtime?
        public var counters: [String: Counter] = [:]
    }

    public struct Downtime: Codable, Equatable, Sendable {
        public var id: String
        public var startedAt: Timestamp
        /// The state that opened it, and the latest downtime state in it.
        public var openingState: String
        public var lastState: String
        public var reasonAtStart: Int64?
        /// Whether `machine.downtime.started` went out (it waits for `min_downtime`).
        public var announced: Bool
    }

    public struct Counter: Codable, Equatable, Sendable {
        /// The baseline: the last reading counted.
        public var last: UInt64?
        /// Increments summed for `min_interval`, not yet emitted.
        public var pending: Pending?
    }

    public struct Pending: Codable, Equatable, Sendable {
        public var quantity: UInt64
        public var from: UInt64
        public var to: UInt64
        public var firstTime: Timestamp
        public var lastTime: Timestamp
    }

    public struct Published: Codable, Equatable, Sendable {
        public var value: TagValue?
        public var quality: Sample.Quality
    }
}
