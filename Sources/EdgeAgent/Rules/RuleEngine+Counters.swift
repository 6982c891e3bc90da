/// Production counters and material totalizers (SPEC 4, 7): quantities add up to the real
/// increase through rollovers, resets, restarts and outages; `min_interval` sums increments on
/// sample time and emits at most that often.
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

    /// The same rule for a totalizer in real numbers; without a range a decrease is a reset.
    public static func increase(from old: Double, to new: Double, range: Double?) -> Double {
        if new >= old { return new - old }
        guard let range else { return new }
        let wrapped = range - old + new
        return wrapped < range / 2 ? wrapped : new
    }

    /// One reading of a counter or totalizer: the very first only sets the baseline (`last`); a
    /// later one adds its increase to the `min_interval` window in `pending`. Returns the window
    /// to emit now: at once when `minInterval` is 0, otherwise `due` emits it once it has run.
    static func step<Q: AdditiveArithmetic & Comparable>(
        _ reading: Q, at time: Timestamp, last: inout Q?, pending: inout RuleState.Pending<Q>?, minInterval: Int64,
        increase: (Q, Q) -> Q
    ) -> RuleState.Pending<Q>? {
        guard let previous = last else {
            last = reading
            return nil
        }
        last = reading
        let quantity = increase(previous, reading)
        guard quantity > .zero else { return nil }
        var window = pending ?? RuleState.Pending(quantity: .zero, from: previous, to: reading, firstTime: time, lastTime: time)
        window.quantity += quantity
        window.to = reading
        window.lastTime = time
        pending = minInterval <= 0 ? nil : window
        return minInterval <= 0 ? window : nil
    }

    mutating func count(_ sample: Sample, counter: RuleSet.Counter, machine: RuleSet.Machine, into events: inout [Event]) {
        guard let reading = sample.value?.counterReading(range: counter.range) else { return }
        var stored = state.machines[machine.name, default: RuleState.Machine()].counters[counter.tag, default: RuleState.Counter()]
        let window = Self.step(reading, at: sample.time, last: &stored.last, pending: &stored.pending, minInterval: counter.minInterval) {
            Self.increase(from: $0, to: $1, range: counter.range)
        }
        state.machines[machine.name, default: RuleState.Machine()].counters[counter.tag] = stored
        if let window { events.append(production(counter, machine: machine, window)) }
    }

    mutating func consume(_ sample: Sample, material: RuleSet.Material, machine: RuleSet.Machine, into events: inout [Event]) {
        let value: Double?
        if material.integral {
            value = sample.value?.counterReading(range: material.range.map { UInt64($0) }).map { Double($0) }
        } else {
            value = sample.value?.number
        }
        guard let reading = value, reading.isFinite else { return }
        var stored = state.machines[machine.name, default: RuleState.Machine()].materials[material.tag, default: RuleState.Totalizer()]
        let window = Self.step(reading, at: sample.time, last: &stored.last, pending: &stored.pending, minInterval: material.minInterval) {
            Self.increase(from: $0, to: $1, range: material.range)
        }
        state.machines[machine.name, default: RuleState.Machine()].materials[material.tag] = stored
        if let window { events.append(consumption(material, machine: machine, window)) }
    }

    /// Emits the `min_interval` sums of `machine` whose window has run at `time`; all of them
    /// when `time` is nil (a work order is about to complete).
    mutating func flush(_ machine: RuleSet.Machine, dueAt time: Timestamp?, into events: inout [Event]) {
        func isDue(_ first: Timestamp, _ interval: Int64) -> Bool { time.map { $0.milliseconds - first.milliseconds >= interval } ?? true }
        for counter in machine.counters {
            guard let pending = state.machines[machine.name]?.counters[counter.tag]?.pending,
                  isDue(pending.firstTime, counter.minInterval) else { continue }
            state.machines[machine.name]?.counters[counter.tag]?.pending = nil
            events.append(production(counter, machine: machine, pending))
        }
        for material in machine.materials {
            guard let pending = state.machines[machine.name]?.materials[material.tag]?.pending,
                  isDue(pending.firstTime, material.minInterval) else { continue }
            state.machines[machine.name]?.materials[material.tag]?.pending = nil
            events.append(consumption(material, machine: machine, pending))
        }
    }

    /// The event for a (possibly summed) increase; its time is that of the last increment in it.
    /// It credits the running order when it carries it.
    mutating func production(_ counter: RuleSet.Counter, machine: RuleSet.Machine, _ pending: RuleState.Pending<UInt64>) -> Event {
        let order = workOrder(machine, tag: counter.workOrderTag)
        let quantity = Int64(clamping: pending.quantity)
        if var running = runningOrder(machine, carried: order) {
            if counter.event == .productionScrapped { running.scrap += quantity } else { running.good += quantity }
            state.machines[machine.name]?.workOrder = running
        }
        return Event(type: counter.event, subject: machine.name, time: pending.lastTime, data: [
            "machine": .string(machine.name), "quantity": .int(quantity), "unit": .string(counter.unit),
            "counter": ["tag": .string(counter.tag), "from": .int(Int64(bitPattern: pending.from)), "to": .int(Int64(bitPattern: pending.to))],
            "work_order": order,
        ])
    }

    mutating func consumption(_ material: RuleSet.Material, machine: RuleSet.Machine, _ pending: RuleState.Pending<Double>) -> Event {
        let order = workOrder(machine, tag: nil)
        let name: String
        switch material.material {
        case let .fixed(fixed): name = fixed
        case let .tag(tag): name = state.values[tag].flatMap(Self.orderText).flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
        }
        if var running = runningOrder(machine, carried: order) {
            if let i = running.materials.firstIndex(where: { $0.material == name }) {
                running.materials[i].quantity += pending.quantity
            } else {
                running.materials.append(.init(material: name, quantity: pending.quantity, unit: material.unit, integral: material.integral))
            }
            state.machines[machine.name]?.workOrder = running
        }
        let number = { (v: Double) -> JSONValue in material.integral ? .int(Int64(v)) : .double(v) }
        return Event(type: .materialConsumed, subject: machine.name, time: pending.lastTime, data: [
            "machine": .string(machine.name), "material": .string(name),
            "lot": material.lotTag.flatMap { state.values[$0] }.flatMap(Self.orderText).map { .string($0) } ?? .null,
            "quantity": number(pending.quantity), "unit": .string(material.unit),
            "counter": ["tag": .string(material.tag), "from": number(pending.from), "to": number(pending.to)],
            "work_order": order,
        ])
    }
}
