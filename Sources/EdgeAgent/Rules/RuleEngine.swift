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
        var start = samples.startIndex
        while start < samples.endIndex {
            let time = samples[start].time
            var end = start
            while end < samples.endIndex, samples[end].time == time { end += 1 }
            applyReading(samples[start..<end], time: time, into: &events)
            start = end
        }
        return events
    }

    /// Lets time pass without samples: announces downtimes that reached `min_downtime` and
    /// flushes `min_interval` sums that are due.
    public mutating func advance(to time: Timestamp) -> [Event] {
        var events: [Event] = []
        for machine in rules.machines { due(machine, at: time, into: &events) }
        return events
    }

    private mutating func applyReading(_ reading: ArraySlice<Sample>, time: Timestamp, into events: inout [Event]) {
        // The last good sample of each tag in this reading.
        var latest: [String: Sample] = [:]
        for sample in reading where sample.quality == .good {
            latest[sample.tag] = sample
            if rules.contextTags.contains(sample.tag) { state.values[sample.tag] = sample.value }
        }
        for machine in rules.machines {
            if let tag = machine.workOrderTag, let order = latest[tag]?.value.flatMap(Self.orderText) {
                changeOrder(to: order, machine: machine, at: time, into: &events)
            }
            if let rule = machine.state {
                switch rule.source {
                case let .map(tag, codes):
                    if let code = latest[tag]?.value?.integer {
                        let name = codes.first { $0.code == code }?.state ?? "unknown"
                        enter(name, code: code, machine: machine, rule: rule, at: time, into: &events)
                    }
                case let .bits(bits, fallback):
                    if bits.contains(where: { latest[$0.tag] != nil }) {
                        let on = bits.first { state.values[$0.tag]?.number.map { $0 != 0 } ?? false }
                        enter(on?.state ?? fallback, code: nil, machine: machine, rule: rule, at: time, into: &events)
                    }
                }
            }
            for counter in machine.counters {
                if let sample = latest[counter.tag] { count(sample, counter: counter, machine: machine, into: &events) }
            }
            for material in machine.materials {
                if let sample = latest[material.tag] { consume(sample, material: material, machine: machine, into: &events) }
            }
            for check in machine.quality {
                if let value = latest[check.tag]?.value?.number { inspect(value, check: check, machine: machine, at: time, into: &events) }
            }
            due(machine, at: time, into: &events)
        }
        for sample in reading where rules.published[sample.tag] != nil {
            publish(sample, deadband: rules.published[sample.tag]!, into: &events)
        }
    }

    /// Announcements, raises and flushes whose time has come.
    private mutating func due(_ machine: RuleSet.Machine, at time: Timestamp, into events: inout [Event]) {
        if let rule = machine.state, var downtime = state.machines[machine.name]?.downtime, !downtime.announced,
           time.milliseconds - downtime.startedAt.milliseconds >= rule.minDowntime.milliseconds {
            downtime.announced = true
            state.machines[machine.name]?.downtime = downtime
            events.append(downtimeStarted(machine.name, downtime))
        }
        flush(machine, dueAt: time, into: &events)
        for check in machine.quality { raiseIfDue(check, machine: machine, at: time, into: &events) }
    }
}
