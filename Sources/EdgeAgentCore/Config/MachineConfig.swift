/// A machine's rules (SPEC 3 `machines`).
public struct MachineConfig: Sendable {
    public var name: String
    public var state: StateRule?
    public var counters: [CounterRule] = []
    /// The tag naming the order being produced (`work_order.tag`).
    public var workOrderTag: String?
    public var materials: [MaterialRule] = []
    public var quality: [QualityCheck] = []

    public init(name: String) { self.name = name }

    public struct StateRule: Sendable {
        public enum Source: Sendable {
            case map(tag: String, codes: [(code: Int64, state: String)])
            case bits([(tag: String, state: String)], default: String)
        }
        public var source: Source
        public var downtime: [String] = []
        public var reasonTag: String?
        public var minDowntime: Duration = .zero

        public init(source: Source, downtime: [String] = [], reasonTag: String? = nil, minDowntime: Duration = .zero) {
            self.source = source
            self.downtime = downtime
            self.reasonTag = reasonTag
            self.minDowntime = minDowntime
        }
    }

    public struct CounterRule: Sendable {
        public var tag: String
        public var event: EventType
        public var unit: String = "pcs"
        public var rollover: UInt64?
        public var workOrderTag: String?
        public var minInterval: Duration = .zero

        public init(tag: String, event: EventType) {
            self.tag = tag
            self.event = event
        }
    }

    /// A material totalizer (SPEC 3 `materials`): the counter rule on a quantity of material.
    public struct MaterialRule: Sendable {
        public enum Material: Sendable, Equatable {
            case fixed(String)
            case tag(String)
        }
        public var tag: String
        public var material: Material
        public var lotTag: String?
        public var unit: String
        public var rollover: Double?
        public var minInterval: Duration = .zero

        public init(
            tag: String, material: Material, lotTag: String?, unit: String, rollover: Double?, minInterval: Duration
        ) {
            self.tag = tag
            self.material = material
            self.lotTag = lotTag
            self.unit = unit
            self.rollover = rollover
            self.minInterval = minInterval
        }
    }

    /// A quality check (SPEC 3 `quality`): limits on a number, or a bool tag that is the exception.
    public struct QualityCheck: Sendable {
        public enum Condition: Sendable, Equatable {
            /// Outside [low, high]; back inside by `hysteresis` to clear. Either limit may be absent.
            case limits(low: Double?, high: Double?, hysteresis: Double)
            /// On while the tag is true (non-zero).
            case flag
        }
        public enum Severity: String, Sendable { case minor, major, critical }
        public var name: String
        public var tag: String
        public var condition: Condition
        public var minDuration: Duration = .zero
        public var severity: Severity = .major
        public var reasonTag: String?

        public init(
            name: String, tag: String, condition: Condition, minDuration: Duration = .zero, severity: Severity = .major,
            reasonTag: String? = nil
        ) {
            self.name = name
            self.tag = tag
            self.condition = condition
            self.minDuration = minDuration
            self.severity = severity
            self.reasonTag = reasonTag
        }
    }
}
