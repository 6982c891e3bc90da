/// The machines' rules, compiled once from the configuration: what the engine looks up per sample.
public struct RuleSet: Sendable {
    public struct Machine: Sendable {
        public var name: String
        public var state: MachineConfig.StateRule?
        public var counters: [Counter]
        /// The tag naming the order being produced; its changes start and complete work orders.
        public var workOrderTag: String?
        public var materials: [Material]
        public var quality: [MachineConfig.QualityCheck]
        /// Whether the wall clock drives the machine between samples: true when a device feeds
        /// it. A machine fed only by historian files runs on the times in its files (SPEC 7), so
        /// `RuleEngine.advance` leaves it alone.
        public var wallClock: Bool

        public init(
            name: String, state: MachineConfig.StateRule? = nil, counters: [Counter] = [], workOrderTag: String? = nil,
            materials: [Material] = [], quality: [MachineConfig.QualityCheck] = [], wallClock: Bool = true
        ) {
            self.name = name
            self.state = state
            // A counter reading the machine's own order tag follows the order the machine runs.
            self.counters = counters.map { counter in
                var counter = counter
                if counter.workOrderTag == workOrderTag { counter.workOrderTag = nil }
                return counter
            }
            self.workOrderTag = workOrderTag
            self.materials = materials
            self.quality = quality
            self.wallClock = wallClock
        }

        /// The tags whose samples drive the machine's rules (not the context it reads with them).
        var inputTags: [String] {
            var tags: [String] = []
            switch state?.source {
            case let .map(tag, _)?: tags.append(tag)
            case let .bits(bits, _)?: tags += bits.map(\.tag)
            case nil: break
            }
            return tags + counters.map(\.tag) + materials.map(\.tag) + quality.map(\.tag)
        }

        /// The unit of the order's good and scrap totals: its first counter's.
        var countUnit: String { counters.first?.unit ?? "pcs" }
    }

    public struct Material: Sendable {
        public var tag: String
        public var material: MachineConfig.MaterialRule.Material
        public var lotTag: String?
        public var unit: String
        /// Readings wrap at this value; nil: a decrease is a reset (float totalizers, 64-bit registers).
        public var range: Double?
        /// Whole-number readings (an integer register): quantities are integers.
        public var integral: Bool
        public var minInterval: Int64

        public init(
            tag: String, material: MachineConfig.MaterialRule.Material, lotTag: String? = nil, unit: String = "kg",
            range: Double? = nil, integral: Bool = false, minInterval: Int64 = 0
        ) {
            self.tag = tag
            self.material = material
            self.lotTag = lotTag
            self.unit = unit
            self.range = range
            self.integral = integral
            self.minInterval = minInterval
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

        public init(
            tag: String, event: EventType = .productionCompleted, unit: String = "pcs", range: UInt64? = nil,
            workOrderTag: String? = nil, minInterval: Int64 = 0
        ) {
            self.tag = tag
            self.event = event
            self.unit = unit
            self.range = range
            self.workOrderTag = workOrderTag
            self.minInterval = minInterval
        }
    }

    public let machines: [Machine]
    /// Tags forwarded as `tag.changed` (`publish: on_change`), with their deadband.
    public let published: [String: Double]
    /// Tags whose latest value the rules read when something happens (reason codes, work orders, bits).
    public let contextTags: Set<String>
    /// Tags the rules read as text (work orders, lots, material numbers): a historian takes their
    /// cells as they are. Every other tag is a number (reason codes and state bits included).
    public let textTags: Set<String>
    /// What the rules do with each tag they read or publish: one lookup per sample tells the
    /// engine all of it.
    let roles: [String: Role]
    /// Where each machine's tags keep their latest sample in a reading (`Role.slot`), in the
    /// order of `machines`: the rules find a tag's sample by position, not by hashing its name.
    let inputs: [Inputs]
    /// How many tags drive a machine: the slots a reading has.
    let slots: Int
    /// Every tag a rule reads or publishes: a sample of any other tag changes nothing.
    public var reads: Set<String> { Set(roles.keys) }

    struct Role {
        /// A machine's rule or the context reads its latest sample.
        let read: Bool
        /// Its latest good value is kept as context.
        let context: Bool
        /// Published on change with this deadband.
        let deadband: Double?
        /// The machines (indices in `machines`) whose rules a sample of the tag drives: a reading
        /// runs only those, and lets time pass on the others.
        let machines: [Int]
        /// The slot of its latest sample when it drives a machine; a tag driving several has one.
        let slot: Int?
    }

    /// The slots of one machine's tags, rule by rule.
    struct Inputs: Equatable {
        /// The mapped state's tag, or the state bits' tags in order.
        var state: [Int] = []
        var counters: [Int] = []
        var materials: [Int] = []
        var quality: [Int] = []
        var workOrder: Int?
    }

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
            for material in machine.materials {
                if let lot = material.lotTag { context.insert(lot) }
                if case let .tag(tag) = material.material { context.insert(tag) }
            }
            context.formUnion(machine.quality.compactMap(\.reasonTag))
        }
        contextTags = context
        var text = Set<String>()
        for machine in machines {
            if let order = machine.workOrderTag { text.insert(order) }
            text.formUnion(machine.counters.compactMap(\.workOrderTag))
            for material in machine.materials {
                if let lot = material.lotTag { text.insert(lot) }
                if case let .tag(tag) = material.material { text.insert(tag) }
            }
        }
        textTags = text
        // The machines each tag drives: its inputs and its work order's tag.
        var driven: [String: [Int]] = [:]
        for (index, machine) in machines.enumerated() {
            for tag in Set(machine.inputTags + (machine.workOrderTag.map { [$0] } ?? [])) {
                driven[tag, default: []].append(index)
            }
        }
        let machineTags = Set(driven.keys)
        // Slots in the order machines name their tags.
        var slot: [String: Int] = [:]
        func resolve(_ tag: String) -> Int {
            if let known = slot[tag] { return known }
            slot[tag] = slot.count
            return slot.count - 1
        }
        inputs = machines.map { machine in
            var inputs = Inputs()
            switch machine.state?.source {
            case let .map(tag, _)?: inputs.state = [resolve(tag)]
            case let .bits(bits, _)?: inputs.state = bits.map { resolve($0.tag) }
            case nil: break
            }
            inputs.counters = machine.counters.map { resolve($0.tag) }
            inputs.materials = machine.materials.map { resolve($0.tag) }
            inputs.quality = machine.quality.map { resolve($0.tag) }
            inputs.workOrder = machine.workOrderTag.map(resolve)
            return inputs
        }
        slots = slot.count
        roles = Dictionary(
            uniqueKeysWithValues: context.union(published.keys).union(machineTags).map { tag in
                let isContext = context.contains(tag)
                return (
                    tag,
                    Role(
                        read: isContext || machineTags.contains(tag), context: isContext, deadband: published[tag],
                        machines: driven[tag] ?? [], slot: slot[tag])
                )
            })
    }

    public init(config: AgentConfig) {
        let tags = config.deviceTags
        let types = tags.mapValues(\.type)
        let published = tags.filter { $0.value.publish == .on_change }.mapValues(\.deadband)
        let machines = config.machines.map { machine in
            Machine(
                name: machine.name, state: machine.state,
                counters: machine.counters.map { counter in
                    Counter(
                        tag: counter.tag, event: counter.event, unit: counter.unit,
                        range: counter.rollover ?? types[counter.tag].flatMap(Self.range(of:)),
                        workOrderTag: counter.workOrderTag, minInterval: counter.minInterval.milliseconds)
                }, workOrderTag: machine.workOrderTag,
                materials: machine.materials.map { material in
                    // Historian values and float registers are real numbers; integer registers whole ones.
                    let integral = types[material.tag].map { $0 != .float32 && $0 != .float64 } ?? false
                    return Material(
                        tag: material.tag, material: material.material, lotTag: material.lotTag, unit: material.unit,
                        range: material.rollover
                            ?? (integral ? types[material.tag].flatMap(Self.range(of:)).map { Double($0) } : nil),
                        integral: integral, minInterval: material.minInterval.milliseconds)
                }, quality: machine.quality)
        }
        .map { machine in
            var machine = machine
            machine.wallClock = machine.inputTags.contains { tags[$0] != nil }
            return machine
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
