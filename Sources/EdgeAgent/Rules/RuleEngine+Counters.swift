/// Production counters (SPEC 4): quantities add up to the real increase through rollovers,
/// resets, restarts and outages.
extension RuleEngine {
    /// The increase from `old` to `new` on a counter wrapping at `range` (nil = 2^64): a decrease
    /// is a rollover when the wrapped increase is under half the range, otherwise a reset, and
    /// the new reading counts from zero.
    public static func increase(from old: UInt64, to new: UInt64, range: UInt64?) -> UInt64 {
        if new >= old { return new - old }
        let wrapped = range.map { $0 - old + new } ?? (new &- old)
        let half = range.map { $0 / 2 } ?? (UInt64.max / 2 + 1)
        return wrapped < half ? wrapped : new
    }

    mutating func count(_ sample: Sample, counter: RuleSet.Counter, machine: String, into events: inout [Event]) {
        guard let reading = sample.value?.counterReading(range: counter.range) else { return }
        var stored = state.machines[machine, default: RuleState.Machine()].counters[counter.tag, default: RuleState.Counter()]
        defer { state.machines[machine, default: RuleState.Machine()].counters[counter.tag] = stored }
        guard let last = stored.last else {
            stored.last = reading  // the very first reading only sets the baseline
            return
        }
        stored.last = reading
        let quantity = Self.increase(from: last, to: reading, range: counter.range)
        guard quantity > 0 else { return }
        var pending = stored.pending ?? RuleState.Pending(quantity: 0, from: last, to: reading, firstTime: sample.time, lastTime: sample.time)
        pending.quantity += quantity
        pending.to = reading
        pending.lastTime = sample.time
        if counter.minInterval <= 0 {
            stored.pending = nil
            events.append(production(counter, machine: machine, pending))
        } else {
            stored.pending = pending
        }
    }

    /// The event for a (possibly summed) increase; its time is that of the last increment in it.
    func production(_ counter: RuleSet.Counter, machine: String, _ pending: RuleState.Pending) -> Event {
        let workOrder: JSONValue = counter.workOrderTag.flatMap { tag in
            state.values[tag].map { value -> JSONValue in
                if case let .string(s) = value { return .string(s) }
                return value.integer.map { .string(String($0)) } ?? value.json
            }
        } ?? .null
        return Event(type: counter.event, subject: machine, time: pending.lastTime, data: [
            "machine": .string(machine), "quantity": .int(Int64(clamping: pending.quantity)), "unit": .string(counter.unit),
            "counter": ["tag": .string(counter.tag), "from": .int(Int64(bitPattern: pending.from)), "to": .int(Int64(bitPattern: pending.to))],
            "work_order": workOrder,
        ])
    }
}
