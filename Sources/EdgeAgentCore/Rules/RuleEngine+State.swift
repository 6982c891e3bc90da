/// Machine state and downtime (SPEC 4, 7).
extension RuleEngine.MachineStep {
    mutating func enter(_ name: String, code: Int64?, rule stateRule: MachineConfig.StateRule, at time: Timestamp) {
        guard state.state != name else { return }
        let previous = state.state
        let duration = state.since.map { max(0, time.milliseconds - $0.milliseconds) }
        events.append(
            Event(
                type: .stateChanged, subject: rule.name, time: time,
                data: [
                    "machine": .string(rule.name), "state": .string(name),
                    "previous_state": previous.map { .string($0) } ?? .null,
                    "code": code.map { .int($0) } ?? .null, "previous_duration_ms": duration.map { .int($0) } ?? .null,
                ]))
        state.state = name
        state.since = time
        let down = stateRule.downtime.contains(name)
        let reason = stateRule.reasonTag.flatMap { values[$0]?.integer }
        if var downtime = state.downtime {
            if down {
                downtime.lastState = name  // stopped, then fault: still one downtime
                state.downtime = downtime
            } else {
                let lasted = time.milliseconds - downtime.startedAt.milliseconds
                if !downtime.announced, lasted >= stateRule.minDowntime.milliseconds {
                    events.append(downtimeStarted(downtime))
                    downtime.announced = true
                }
                if downtime.announced {
                    if let order = state.workOrder {
                        state.workOrder?.downtimeMs += Self.overlap(downtime.startedAt, time, order)
                    }
                    events.append(
                        Event(
                            type: .downtimeEnded, subject: rule.name, time: time,
                            data: [
                                "machine": .string(rule.name), "downtime_id": .string(downtime.id),
                                "state": .string(downtime.lastState),
                                "reason_code": reason.map { .int($0) } ?? .null,
                                "started_at": .string(downtime.startedAt.rfc3339),
                                "ended_at": .string(time.rfc3339), "duration_ms": .int(lasted),
                            ]))
                }
                state.downtime = nil  // a micro-stop leaves no trace
            }
        } else if down {
            var downtime = RuleState.Downtime(
                id: "\(rule.name)-\(time.milliseconds)", startedAt: time, openingState: name,
                lastState: name, reasonAtStart: reason, announced: false)
            if stateRule.minDowntime <= .zero {
                downtime.announced = true
                events.append(downtimeStarted(downtime))
            }
            state.downtime = downtime
        }
    }

    /// `time` is the true start, whenever the announcement is made.
    func downtimeStarted(_ downtime: RuleState.Downtime) -> Event {
        Event(
            type: .downtimeStarted, subject: rule.name, time: downtime.startedAt,
            data: [
                "machine": .string(rule.name), "downtime_id": .string(downtime.id),
                "state": .string(downtime.openingState),
                "reason_code": downtime.reasonAtStart.map { .int($0) } ?? .null,
            ])
    }
}
