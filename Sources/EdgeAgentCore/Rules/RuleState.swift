/// Everything the rules remember, stored in the outbox in the same transaction as the events
/// it produced: after a crash the engine resumes exactly where the last commit left it.
/// Fields added after the first release decode as absent from an older database's state.
public struct RuleState: Codable, Equatable, Sendable {
    /// Latest good values of the context tags (reason codes, work orders, state bits, lots).
    public var values: [String: TagValue] = [:]
    public var machines: [String: Machine] = [:]
    /// Last published value and quality of `publish: on_change` tags.
    public var published = PublishedTags()

    public init() {}

    public struct Machine: Codable, Equatable, Sendable {
        public var state: String?
        public var since: Timestamp?
        public var downtime: Downtime?
        public var counters: [String: Counter] = [:]
        /// Material totalizers by tag.
        public var materials: [String: Totalizer] = [:]
        /// Quality checks by name, present while the condition holds (pending or raised).
        public var checks: [String: Check] = [:]
        /// The order tag's last value ("" for none; nil before its first reading) and the order running.
        public var orderValue: String?
        public var workOrder: WorkOrder?

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            state = try c.decodeIfPresent(String.self, forKey: .state)
            since = try c.decodeIfPresent(Timestamp.self, forKey: .since)
            downtime = try c.decodeIfPresent(Downtime.self, forKey: .downtime)
            counters = try c.decodeIfPresent([String: Counter].self, forKey: .counters) ?? [:]
            materials = try c.decodeIfPresent([String: Totalizer].self, forKey: .materials) ?? [:]
            checks = try c.decodeIfPresent([String: Check].self, forKey: .checks) ?? [:]
            orderValue = try c.decodeIfPresent(String.self, forKey: .orderValue)
            workOrder = try c.decodeIfPresent(WorkOrder.self, forKey: .workOrder)
        }
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

        public init(
            id: String, startedAt: Timestamp, openingState: String, lastState: String, reasonAtStart: Int64?,
            announced: Bool
        ) {
            self.id = id
            self.startedAt = startedAt
            self.openingState = openingState
            self.lastState = lastState
            self.reasonAtStart = reasonAtStart
            self.announced = announced
        }
    }

    public struct Counter: Codable, Equatable, Sendable {
        /// The baseline: the last reading counted.
        public var last: UInt64?
        /// Increments summed for `min_interval`, not yet emitted.
        public var pending: Pending<UInt64>?
    }

    /// A material totalizer: the counter rule in real numbers (an integer totalizer's readings are
    /// whole numbers, exact in a Double up to 2^53).
    public struct Totalizer: Codable, Equatable, Sendable {
        public var last: Double?
        public var pending: Pending<Double>?
    }

    public struct Pending<Quantity: Codable & Equatable & Sendable>: Codable, Equatable, Sendable {
        public var quantity: Quantity
        public var from: Quantity
        public var to: Quantity
        public var firstTime: Timestamp
        public var lastTime: Timestamp
    }

    /// A quality condition that holds: pending until `min_duration`, then raised until it clears.
    public struct Check: Codable, Equatable, Sendable {
        /// When the value first left the limits (or the flag came on): the exception's start.
        public var since: Timestamp
        /// The value when it began, and the furthest from the limits seen since.
        public var value: Double
        public var extreme: Double
        public var raised: Bool
    }

    /// The order a machine is producing and its totals so far (SPEC 7 work orders).
    public struct WorkOrder: Codable, Equatable, Sendable {
        public var id: String
        public var startedAt: Timestamp
        public var good: Int64 = 0
        public var scrap: Int64 = 0
        /// Material consumed, by material, in the order first consumed.
        public var materials: [MaterialTotal] = []
        /// Overlap with downtimes reported before the order completed, ended ones.
        public var downtimeMs: Int64 = 0

        public init(id: String, startedAt: Timestamp) {
            self.id = id
            self.startedAt = startedAt
        }
    }

    public struct MaterialTotal: Codable, Equatable, Sendable {
        public var material: String
        public var quantity: Double
        public var unit: String
        public var integral: Bool
    }

    public struct Published: Codable, Equatable, Sendable {
        public var value: TagValue?
        public var quality: Sample.Quality

        public init(value: TagValue?, quality: Sample.Quality) {
            self.value = value
            self.quality = quality
        }

        /// The same quality and value, a NaN the same as a NaN: a tag that stays at NaN has not
        /// changed, and its stored row is not written again at every poll.
        public static func == (a: Self, b: Self) -> Bool {
            a.quality == b.quality
                && (a.value == b.value || (a.value?.number?.isNaN == true && b.value?.number?.isNaN == true))
        }
    }
}
