import EdgeAgent
import EdgeAgentCore

/// The registers of a scenario at a moment: pure, so a test can say exactly what a script makes,
/// and the ground truth the demo and the tests hold the agent's events against.
public struct LineSimulator: Sendable {
    public struct Write: Sendable, Equatable {
        public var address: Int
        public var values: [UInt16]
    }

    struct Plan: Sendable {
        var machine: SimulatorScenario.Machine
        /// Each phase's length in ms and the parts made by the end of it, from the start of a cycle.
        var lengths: [Int64]
        var partsAfter: [Double]
        var orderLength: Int64?
        var melt: (at: Int64, length: Int64)?
        var cycle: Int64 { lengths.reduce(0, +) }
    }

    let plans: [Plan]
    let endState: UInt16

    public init(_ scenario: SimulatorScenario) throws {
        func duration(_ text: String, _ path: String, key: String) throws -> Int64 {
            guard let d = ConfigValues.duration(text), d > .zero else {
                throw ConfigError(issues: [
                    ConfigIssue(
                        file: "scenario", line: 1, column: 1, path: path,
                        message: "'\(key)' must be a duration such as 20s, found '\(text)'")
                ])
            }
            return d.milliseconds
        }
        plans = try scenario.machines.map { machine in
            let lengths = try machine.phases.map { try duration($0.for, "machines.\(machine.name).phases", key: "for") }
            var total = 0.0
            let partsAfter = zip(machine.phases, lengths).map { phase, ms in
                total += (phase.rate ?? 0) * Double(ms) / 1000
                return total
            }
            return Plan(
                machine: machine, lengths: lengths, partsAfter: partsAfter,
                orderLength: try machine.order_length.map {
                    try duration($0, "machines.\(machine.name)", key: "order_length")
                },
                melt: try machine.melt.map {
                    (
                        try duration($0.at, "machines.\(machine.name).melt", key: "at"),
                        try duration($0.for, "machines.\(machine.name).melt", key: "for")
                    )
                })
        }
        endState = scenario.end_state ?? 2
    }

    /// Where machine `index` is `elapsed` ms into the scenario: its phase and the parts made so far.
    public func position(machine index: Int, elapsed: Int64) -> (phase: SimulatorScenario.Phase, parts: UInt64) {
        let plan = plans[index]
        let phases = plan.machine.phases
        if !(plan.machine.repeat ?? true), elapsed >= plan.cycle {
            return (phases[phases.count - 1], UInt64(plan.partsAfter[phases.count - 1].rounded(.down)))
        }
        var into = elapsed % plan.cycle
        var parts = Double(elapsed / plan.cycle) * plan.partsAfter[phases.count - 1]
        var i = 0
        while into >= plan.lengths[i] {
            into -= plan.lengths[i]
            i += 1
        }
        parts += (i > 0 ? plan.partsAfter[i - 1] : 0) + (phases[i].rate ?? 0) * Double(into) / 1000
        return (phases[i], UInt64(parts.rounded(.down)))
    }

    /// Whole kg of resin used by `elapsed` ms: it follows the parts made.
    public func resin(machine index: Int, elapsed: Int64) -> UInt64 {
        UInt64(
            (Double(position(machine: index, elapsed: elapsed).parts) * (plans[index].machine.resin_per_part ?? 0))
                .rounded(.down))
    }

    /// The order running at `elapsed` ms ("" for none): each runs `order_length`, the last one stays.
    public func order(machine index: Int, elapsed: Int64) -> String? {
        let plan = plans[index]
        let orders = plan.machine.orders
        guard !orders.isEmpty else { return nil }
        guard let length = plan.orderLength else { return orders[0] }
        return orders[min(orders.count - 1, Int(elapsed / length))]
    }

    /// The melt temperature at `elapsed` ms.
    public func melt(machine index: Int, elapsed: Int64) -> Double? {
        guard let melt = plans[index].machine.melt, let (at, length) = plans[index].melt else { return nil }
        let into = elapsed - at
        guard into >= 0, into < length else { return melt.nominal }
        let ramp = min(1, Double(min(into, length - into)) / 1000)
        return melt.nominal + (melt.peak - melt.nominal) * ramp
    }

    /// The holding-register writes for every machine at `elapsed` ms; `ended`: the line has been
    /// stopped at the end of a timed run (each machine shows `end_state`, nothing else moves).
    public func writes(elapsed: Int64, ended: Bool = false) -> [Write] {
        plans.indices.flatMap { i -> [Write] in
            let machine = plans[i].machine
            let (phase, parts) = position(machine: i, elapsed: elapsed)
            var writes = [Write(address: machine.registers.state, values: [ended ? endState : phase.state])]
            if let reason = machine.registers.reason {
                writes.append(Write(address: reason, values: [ended ? 0 : phase.reason ?? 0]))
            }
            if let counter = machine.registers.counter {
                writes.append(
                    Write(
                        address: counter,
                        values: [UInt16(truncatingIfNeeded: UInt64(machine.counter_start ?? 0) + parts)]))
            }
            if let address = machine.registers.work_order, let order = order(machine: i, elapsed: elapsed) {
                var bytes = Array(order.utf8.prefix(16))
                bytes += [UInt8](repeating: 0, count: 16 - bytes.count)
                writes.append(
                    Write(
                        address: address,
                        values: stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }))
            }
            if let address = machine.registers.resin {
                let kg = UInt32(truncatingIfNeeded: resin(machine: i, elapsed: elapsed))
                writes.append(Write(address: address, values: [UInt16(kg >> 16), UInt16(kg & 0xFFFF)]))
            }
            if let address = machine.registers.melt, let celsius = melt(machine: i, elapsed: elapsed) {
                let bits = Float(celsius).bitPattern
                writes.append(Write(address: address, values: [UInt16(bits >> 16), UInt16(bits & 0xFFFF)]))
            }
            return writes
        }
    }

    /// What machine `index` really did in the first `elapsed` ms, for holding the agent's events against.
    public struct Truth: Sendable, Equatable {
        public struct Order: Sendable, Equatable {
            public var id: String
            public var parts: UInt64
            public var resin: UInt64
            public init(id: String, parts: UInt64, resin: UInt64) {
                self.id = id
                self.parts = parts
                self.resin = resin
            }
        }
        public var parts: UInt64
        public var resin: UInt64
        /// Runs of consecutive downtime states that lasted at least the minimum (the last one cut at `elapsed`).
        public var downtimes: Int
        /// Melt excursions that went above `high` for at least `minDuration`, wholly played.
        public var excursions: Int
        /// Orders that ran and were followed by another (or by none) within `elapsed`.
        public var completedOrders: [Order]

        public init(parts: UInt64, resin: UInt64, downtimes: Int, excursions: Int, completedOrders: [Order]) {
            self.parts = parts
            self.resin = resin
            self.downtimes = downtimes
            self.excursions = excursions
            self.completedOrders = completedOrders
        }
    }

    public func truth(
        machine index: Int, elapsed: Int64, downtimeStates: Set<UInt16>, minDowntime: Int64,
        high: Double = .infinity, minDuration: Int64 = 0
    ) -> Truth {
        let plan = plans[index]
        // Downtimes: walk the phases as played.
        var downtimes = 0
        var runStart: Int64?
        var t: Int64 = 0
        var phase = 0
        while t < elapsed {
            let state = plan.machine.phases[phase].state
            if downtimeStates.contains(state) {
                if runStart == nil { runStart = t }
            } else if let start = runStart {
                if t - start >= minDowntime { downtimes += 1 }
                runStart = nil
            }
            if !(plan.machine.repeat ?? true), phase == plan.lengths.count - 1, t + plan.lengths[phase] <= elapsed {
                t = elapsed  // a script that does not repeat holds its last phase
                break
            }
            t += plan.lengths[phase]
            phase = (phase + 1) % plan.lengths.count
        }
        if let start = runStart, min(t, elapsed) - start >= minDowntime { downtimes += 1 }
        // The excursion: above `high` from when the ramp crosses it until it comes back.
        var excursions = 0
        if let melt = plan.machine.melt, let (at, length) = plan.melt, at + length <= elapsed, melt.peak > high {
            let rampToHigh = Int64(((high - melt.nominal) / (melt.peak - melt.nominal) * 1000).rounded(.up))
            if length - 2 * max(0, rampToHigh) >= minDuration { excursions = 1 }
        }
        // Orders: each one completed by the next start within `elapsed`.
        var completed: [Truth.Order] = []
        if let length = plan.orderLength {
            let orders = plan.machine.orders
            for (i, id) in orders.enumerated()
            where i + 1 < orders.count && !id.isEmpty && Int64(i + 1) * length <= elapsed {
                let (from, to) = (Int64(i) * length, Int64(i + 1) * length)
                completed.append(
                    .init(
                        id: id,
                        parts: position(machine: index, elapsed: to).parts
                            - position(machine: index, elapsed: from).parts,
                        resin: resin(machine: index, elapsed: to) - resin(machine: index, elapsed: from)))
            }
        }
        return Truth(
            parts: position(machine: index, elapsed: elapsed).parts, resin: resin(machine: index, elapsed: elapsed),
            downtimes: downtimes, excursions: excursions, completedOrders: completed)
    }
}
