/// The machines' rules, compiled once from the configuration: what the engine looks up per sample.
public struct RuleSet: Sendable {
    public struct Machine: Sendable {
        public var name: String
        public var state: MachineConfig.StateRule?
        public var counters: [Counter]

        public init(name: String, state: MachineConfig.StateRule? = nil, counters: [Counter] = []) {
            self.name = name
            self.state = state
            self.counters = counters
        }
    }

    public struct Counter: Sendable {
        public var tag: String
        public var event: EventType
        public var unit: String
        /// Readings wrap at this value; nil is 2^64.
        public var range: UInt64?
        public var workOrderTag: String?
        public var minInterval: Int64

        public init(tag: String, event: EventType = .productionCompleted, unit: String = "pcs", range: UInt64? = nil,
                    workOrderTag: String? = nil, minInterval: Int64 = 0) {
            self.tag = tag
            self.event = event
            self.unit = unit
            self.range = range
            self.workOrderTag = workOrderTag
            self.minInterval = minInterval
        }
    }

    public var machines: [Machine]
    /// Tags forwarded as `tag.changed` (`publish: on_change`), with their deadband.
    public var published: [String: Double]
    /// Tags whose latest value the rules read when something happens (reason codes, work orders, bits).
    public var contextTags: Set<String>

    public init(machines: [Machine], published: [String: Double] = [:]) {
        self.machines = machines
        self.published = published
        var context = Set<String>()
        for machine in machines {
            if let rule = machine.state {
                if let reason = rule.reasonTag { context.insert(reason) }
                if case let .bits(bits, _) = rule.source { context.formUnion(bits.map(\.tag)) }
            }
            context.formUnion(machine.counters.compactMap(\.workOrderTag))
        }
        contextTags = context
    }

    public init(config: AgentConfig) {
        var types: [String: TagConfig.ValueType] = [:]
        var published: [String: Double] = [:]
        for device in config.devices {
            for tag in device.tags {
                types["\(device.name).\(tag.name)"] = tag.type
                if tag.publish == .on_change { published["\(device.name).\(tag.name)"] = tag.deadband }
            }
        }
        let machines = config.machines.map { machine in
            Machine(name: machine.name, state: machine.state, counters: machine.counters.map { counter in
                Counter(tag: counter.tag, event: counter.event, unit: counter.unit,
                        range: counter.rollover ?? types[counter.tag].flatMap(Self.range(of:)),
                        workOrderTag: counter.workOrderTag, minInterval: counter.minInterval.milliseconds)
            })
        }
        self.init(machines: machines, published: published)
    }

    /// The wrap of a register type used as a counter; nil for 64-bit and floating types.
    static func range(of type: TagConfig.ValueType) -> UInt64? {
        switch type {
        case .int16, .uint16: 1 << 16
        case .int32, .uint32: 1 << 32
        case .bool: 2
        default: nil
        }
    }
}
