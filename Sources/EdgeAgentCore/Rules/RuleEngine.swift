/// From tag samples to business events: pure and synchronous, no I/O, no clock. Fed in sample-time
/// order; samples with the same time are one reading (a poll cycle, a historian row), so a reason
/// code read in the same cycle as the stop it explains is seen with it.
///
/// Per machine and reading, in this order: a changed work order (pending sums flushed to the old
/// order, which completes, then the new one starts, so quantities of this reading go to the new
/// one), the state, counters, materials, quality checks, then what became due. Every quantity
/// event credits the running order when it carries that order, so an order's totals are the sums
/// of its events.
public struct RuleEngine: Sendable {
    public let rules: RuleSet
    public var state: RuleState

    public init(rules: RuleSet, state: RuleState = RuleState()) {
        self.rules = rules
        self.state = state
    }

    /// Applies samples (sorted by time) and returns the events they cause, in order.
    public mutating func apply(_ samples: [Sample]) -> [Event] {
        var events: [Event] = []
        var recent = RecentTags(remembering: samples.first?.time != samples.last?.time)
        var start = samples.startIndex
        while start < samples.endIndex {
            let time = samples[start].time
            var end = start
            while end < samples.endIndex, samples[end].time == time { end += 1 }
            applyReading(samples[start..<end], time: time, recent: &recent, into: &events)
            start = end
        }
        return events
    }

    /// Lets wall-clock time pass without samples: announces downtimes that reached `min_downtime`,
    /// raises quality exceptions that held `min_duration`, and flushes `min_interval` sums that are
    /// due, on the machines a device feeds. A machine fed by files moves only with their times.
    public mutating func advance(to time: Timestamp) -> [Event] {
        var events: [Event] = []
        for machine in rules.machines where machine.wallClock {
            run(machine, into: &events) { $0.due(at: time) }
        }
        return events
    }

    /// Each sample's tag is looked up once (`RuleSet.roles`): a historian chunk or a telemetry
    /// poll has many samples per machine, and hashing their tags was a fifth of the rules' time.
    /// The rules then find a tag's latest sample by its slot (`RuleSet.inputs`), not by name.
    /// A chunk of readings remembers the previous reading's tags and roles (`RecentTags`).
    /// A machine none of whose tags the reading holds only lets time pass (`due`): looking its
    /// tags up would find nothing, and a line's reading (one device) feeds few of its machines.
    private mutating func applyReading(
        _ reading: ArraySlice<Sample>, time: Timestamp, recent: inout RecentTags, into events: inout [Event]
    ) {
        // The last good sample of each tag the machines read in this reading, by slot.
        var latest = [Sample?](repeating: nil, count: rules.slots)
        var fed = [Bool](repeating: false, count: rules.machines.count)
        var publishing: [(sample: Sample, deadband: Double)] = []
        for (place, sample) in reading.enumerated() {
            let found = recent.remembering ? recent.role(of: sample.tag, at: place, in: rules) : rules.roles[sample.tag]
            guard let role = found else { continue }
            if role.read, sample.quality == .good {
                if let slot = role.slot { latest[slot] = sample }
                if role.context { state.values[sample.tag] = sample.value }
                for machine in role.machines { fed[machine] = true }
            }
            if let deadband = role.deadband { publishing.append((sample, deadband)) }
        }
        for (index, machine) in rules.machines.enumerated() {
            let inputs = rules.inputs[index]
            run(machine, into: &events) { fed[index] ? $0.apply(latest, inputs, at: time) : $0.due(at: time) }
        }
        for (sample, deadband) in publishing { publish(sample, deadband: deadband, into: &events) }
    }

    /// The tags of the previous reading and their roles, by place: a historian chunk's rows name
    /// the same tags in the same order, and comparing a tag with the one in its place costs less
    /// than hashing it. A tag that differs is looked up and takes the place. A single reading (a
    /// poll) remembers nothing: no reading would compare with it.
    private struct RecentTags {
        let remembering: Bool
        var tags: [(tag: String, role: RuleSet.Role?)] = []

        mutating func role(of tag: String, at place: Int, in rules: RuleSet) -> RuleSet.Role? {
            if place < tags.count, tags[place].tag == tag { return tags[place].role }
            let role = rules.roles[tag]
            if place < tags.count { tags[place] = (tag, role) } else { tags.append((tag, role)) }
            return role
        }
    }

    /// Runs `body` on one machine's state, moved out of `state` and back (no copy), so a rule
    /// looks its state up once per reading rather than once per counter, material and check.
    private mutating func run(
        _ machine: RuleSet.Machine, into events: inout [Event], _ body: (inout MachineStep) -> Void
    ) {
        var step = MachineStep(rule: machine, values: state.values, events: events)
        events = []
        swap(&step.state, &state.machines[machine.name, default: RuleState.Machine()])
        body(&step)
        swap(&step.state, &state.machines[machine.name, default: RuleState.Machine()])
        events = step.events
    }

    /// One machine's rules over one reading (or a passing of time), on that machine's state.
    /// `values` are the context tags' latest values, read-only here.
    struct MachineStep {
        let rule: RuleSet.Machine
        let values: [String: TagValue]
        var events: [Event]
        var state = RuleState.Machine()

        init(rule: RuleSet.Machine, values: [String: TagValue], events: [Event]) {
            self.rule = rule
            self.values = values
            self.events = events
        }

        /// `latest` holds the reading's last good sample of each tag by slot; `inputs` are this
        /// machine's slots.
        mutating func apply(_ latest: [Sample?], _ inputs: RuleSet.Inputs, at time: Timestamp) {
            if let slot = inputs.workOrder, let order = latest[slot]?.value.flatMap(Self.orderText) {
                changeOrder(to: order, at: time)
            }
            if let stateRule = rule.state {
                switch stateRule.source {
                case let .map(_, codes):
                    if let code = latest[inputs.state[0]]?.value?.integer {
                        let name = codes.first { $0.code == code }?.state ?? "unknown"
                        enter(name, code: code, rule: stateRule, at: time)
                    }
                case let .bits(bits, fallback):
                    if inputs.state.contains(where: { latest[$0] != nil }) {
                        let on = bits.first { values[$0.tag]?.number.map { $0 != 0 } ?? false }
                        enter(on?.state ?? fallback, code: nil, rule: stateRule, at: time)
                    }
                }
            }
            for (counter, slot) in zip(rule.counters, inputs.counters) {
                if let sample = latest[slot] { count(sample, counter: counter) }
            }
            for (material, slot) in zip(rule.materials, inputs.materials) {
                if let sample = latest[slot] { consume(sample, material: material) }
            }
            for (check, slot) in zip(rule.quality, inputs.quality) {
                if let value = latest[slot]?.value?.number { inspect(value, check: check, at: time) }
            }
            due(at: time)
        }

        /// Announcements, raises and flushes whose time has come.
        mutating func due(at time: Timestamp) {
            if let stateRule = rule.state, var downtime = state.downtime, !downtime.announced,
                time.milliseconds - downtime.startedAt.milliseconds >= stateRule.minDowntime.milliseconds
            {
                downtime.announced = true
                state.downtime = downtime
                events.append(downtimeStarted(downtime))
            }
            flush(dueAt: time)
            for check in rule.quality { raiseIfDue(check, at: time) }
        }
    }
}
