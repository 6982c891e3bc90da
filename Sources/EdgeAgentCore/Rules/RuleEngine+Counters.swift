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
        var window =
            pending ?? RuleState.Pending(quantity: .zero, from: previous, to: reading, firstTime: time, lastTime: time)
        window.quantity += quantity
        window.to = reading
        window.lastTime = time
        pending = minInterval <= 0 ? nil : window
        return minInterval <= 0 ? window : nil
    }
}

extension RuleEngine.MachineStep {
    mutating func count(_ sample: Sample, counter: RuleSet.Counter) {
        guard let reading = sample.value?.counterReading(range: counter.range) else { return }
        var stored = state.counters[counter.tag] ?? RuleState.Counter()
        let window = RuleEngine.step(
            reading, at: sample.time, last: &stored.last, pending: &stored.pending,
            minInterval: counter.minInterval
        ) { RuleEngine.increase(from: $0, to: $1, range: counter.range) }
        state.counters[counter.tag] = stored
        if let window { events.append(production(counter, window)) }
    }

    mutating func consume(_ sample: Sample, material: RuleSet.Material) {
        let value: Double?
        if material.integral {
            value = sample.value?.counterReading(range: material.range.map { UInt64($0) }).map { Double($0) }
        } else {
            value = sample.value?.number
        }
        guard let reading = value, reading.isFinite else { return }
        var stored = state.materials[material.tag] ?? RuleState.Totalizer()
        let window = RuleEngine.step(
            reading, at: sample.time, last: &stored.last, pending: &stored.pending,
            minInterval: material.minInterval
        ) { RuleEngine.increase(from: $0, to: $1, range: material.range) }
        state.materials[material.tag] = stored
        if let window { events.append(consumption(material, window)) }
    }

    /// Emits the `min_interval` sums whose window has run at `time`; all of them when `time` is
    /// nil (a work order is about to complete).
    mutating func flush(dueAt time: Timestamp?) {
        func isDue(_ first: Timestamp, _ interval: Int64) -> Bool {
            time.map { $0.milliseconds - first.milliseconds >= interval } ?? true
        }
        for counter in rule.counters {
            guard let pending = state.counters[counter.tag]?.pending, isDue(pending.firstTime, counter.minInterval)
            else { continue }
            state.counters[counter.tag]?.pending = nil
            events.append(production(counter, pending))
        }
        for material in rule.materials {
            guard let pending = state.materials[material.tag]?.pending, isDue(pending.firstTime, material.minInterval)
            else { continue }
            state.materials[material.tag]?.pending = nil
            events.append(consumption(material, pending))
        }
    }

    /// The event for a (possibly summed) increase; its time is that of the last increment in it.
    /// It credits the running order when it carries it.
    mutating func production(_ counter: RuleSet.Counter, _ pending: RuleState.Pending<UInt64>) -> Event {
        let order = workOrder(tag: counter.workOrderTag)
        let quantity = Int64(clamping: pending.quantity)
        if carriesRunningOrder(order) {
            if counter.event == .productionScrapped {
                state.workOrder?.scrap += quantity
            } else {
                state.workOrder?.good += quantity
            }
        }
        return Event(
            type: counter.event, subject: rule.name, time: pending.lastTime,
            data: [
                "machine": .string(rule.name), "quantity": .int(quantity), "unit": .string(counter.unit),
                "counter": [
                    "tag": .string(counter.tag), "from": .int(Int64(bitPattern: pending.from)),
                    "to": .int(Int64(bitPattern: pending.to)),
                ],
                "work_order": order,
            ])
    }

    mutating func consumption(_ material: RuleSet.Material, _ pending: RuleState.Pending<Double>) -> Event {
        let order = workOrder(tag: nil)
        let name: String
        switch material.material {
        case let .fixed(fixed): name = fixed
        case let .tag(tag): name = values[tag].flatMap(Self.orderText).flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
        }
        if carriesRunningOrder(order), var running = state.workOrder {
            if let i = running.materials.firstIndex(where: { $0.material == name }) {
                running.materials[i].quantity += pending.quantity
            } else {
                running.materials.append(
                    .init(material: name, quantity: pending.quantity, unit: material.unit, integral: material.integral))
            }
            state.workOrder = running
        }
        let number = { (v: Double) -> JSONValue in material.integral ? .int(Int64(v)) : .double(v) }
        return Event(
            type: .materialConsumed, subject: rule.name, time: pending.lastTime,
            data: [
                "machine": .string(rule.name), "material": .string(name),
                "lot": material.lotTag.flatMap { values[$0] }.flatMap(Self.orderText).map { .string($0) } ?? .null,
                "quantity": number(pending.quantity), "unit": .string(material.unit),
                "counter": ["tag": .string(material.tag), "from": number(pending.from), "to": number(pending.to)],
                "work_order": order,
            ])
    }
}
