/// A machine's rules (SPEC 3 `machines`).
public struct MachineConfig: Sendable {
    public var name: String
    public var state: StateRule?
    public var counters: [CounterRule] = []

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
    }
}
