/// Machine state and downtime (SPEC 4, 7).
extension RuleEngine {
    mutating func enter(_ name: String, code: Int64?, machine: RuleSet.Machine, rule: MachineConfig.StateRule,
                        at time: Timestamp, into events: inout [Event]) {
        var current = state.machines[machine.name] ?? RuleState.Machine()
        guard current.state != name else { return }
        let previous = current.state
        let duration = current.since.map { max(0, time.milliseconds - $0.milliseconds) }
        events.append(Event(type: .stateChanged, subject: machine.name, time: time, data: [
            "machine": .string(machine.name), "state": .string(name), "previous_state": previous.map { .string($0) } ?? .null,
            "code": code.map { .int($0) } ?? .null, "previous_duration_ms": duration.map { .int($0) } ?? .null,
        ]))
        current.state = name
        current.since = time
        let down = rule.downtime.contains(name)
        let reason = rule.reasonTag.flatMap { state.values[$0]?.integer }
        if var downtime = current.downtime {
            if down {
                downtime.lastState = name  // stopped, then fault: still one downtime
                current.downtime = downtime
            } else {
                let lasted = time.milliseconds - downtime.startedAt.milliseconds
                if !downtime.announced, lasted >= rule.minDowntime.milliseconds {
                    events.append(downtimeStarted(machine.name, downtime))
                    downtime.announced = true
                }
                if downtime.announced {
                    if let order = current.workOrder { current.workOrder?.downtimeMs += overlap(downtime.startedAt, time, order) }
                    events.append(Event(type: .downtimeEnded, subject: machine.name, time: time, data: [
                        "machine": .string(machine.name), "downtime_id": .string(downtime.id), "state": .string(downtime.lastState),
                        "reason_code": reason.map { .int($0) } ?? .null, "started_at": .string(downtime.startedAt.rfc3339),
                        "ended_at": .string(time.rfc3339), "duration_ms": .int(lasted),
                    ]))
                }
                current.downtime = nil  // a micro-stop leaves no trace
            }
        } else if down {
            var downtime = RuleState.Downtime(id: "\(machine.name)-\(time.milliseconds)", startedAt: time, openingState: name,
                                              lastState: name, reasonAtStart: reason, announced: false)
            if rule.minDowntime <= .zero {
                downtime.announced = true
                events.append(downtimeStarted(machine.name, downtime))
            }
            current.downtime = downtime
        }
        state.machines[machine.name] = current
    }

    /// `time` is the true start, whenever the announcement is made.
    func downtimeStarted(_ machine: String, _ downtime: RuleState.Downtime) -> Event {
        Event(type: .downtimeStarted, subject: machine, time: downtime.startedAt, data: [
            "machine": .string(machine), "downtime_id": .string(downtime.id), "state": .string(downtime.openingState),
            "reason_code": downtime.reasonAtStart.map { .int($0) } ?? .null,
        ])
    }
}
