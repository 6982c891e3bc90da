/// The registers of a scenario at a moment: pure, so a test can say exactly what a script makes.
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
        var cycle: Int64 { lengths.reduce(0, +) }
    }

    let plans: [Plan]

    public init(_ scenario: SimulatorScenario) throws {
        plans = try scenario.machines.map { machine in
            let lengths = try machine.phases.map { phase -> Int64 in
                guard let d = ConfigValues.duration(phase.for), d > .zero else {
                    throw ConfigError(issues: [ConfigIssue(file: "scenario", line: 1, column: 1, path: "machines.\(machine.name).phases",
                                                           message: "'for' must be a duration such as 20s, found '\(phase.for)'")])
                }
                return d.milliseconds
            }
            var total = 0.0
            let partsAfter = zip(machine.phases, lengths).map { phase, ms in
                total += (phase.rate ?? 0) * Double(ms) / 1000
                return total
            }
            return Plan(machine: machine, lengths: lengths, partsAfter: partsAfter)
        }
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

    /// The holding-register writes for every machine at `elapsed` ms.
    public func writes(elapsed: Int64) -> [Write] {
        plans.indices.flatMap { i -> [Write] in
            let machine = plans[i].machine
            let (phase, parts) = position(machine: i, elapsed: elapsed)
            var writes = [Write(address: machine.registers.state, values: [phase.state])]
            if let reason = machine.registers.reason { writes.append(Write(address: reason, values: [phase.reason ?? 0])) }
            if let counter = machine.registers.counter {
                writes.append(Write(address: counter, values: [UInt16(truncatingIfNeeded: UInt64(machine.counter_start ?? 0) + parts)]))
            }
            if let address = machine.registers.work_order, let order = machine.work_order {
                var bytes = Array(order.utf8.prefix(16))
                bytes += [UInt8](repeating: 0, count: 16 - bytes.count)
                writes.append(Write(address: address, values: stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }))
            }
            return writes
        }
    }
}
