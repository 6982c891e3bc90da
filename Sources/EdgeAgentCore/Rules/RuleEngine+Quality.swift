/// Quality checks (SPEC 7). A limit check's condition holds while the value is outside
/// [`low`, `high`]; it is raised once it has held `min_duration` without a break (the event's
/// time and `started_at` are when it began) and cleared when the value is back inside by
/// `hysteresis`, so a value chattering around a limit raises one exception, not many. A bool
/// check holds while its tag is true and clears when it is false. Bad quality neither raises nor
/// clears (bad samples never reach `inspect`). An exception open across a restart is rule state:
/// it stays open and clears once.
///
/// | value seen            | nothing open   | pending             | raised                      |
/// |-----------------------|----------------|---------------------|-----------------------------|
/// | outside               | pending, since | keep, track extreme | keep, track extreme         |
/// | inside, not by hyst.  | —              | dropped (a blip)    | keep                        |
/// | inside by hysteresis  | —              | dropped             | cleared                     |
extension RuleEngine.MachineStep {
    mutating func inspect(_ value: Double, check: MachineConfig.QualityCheck, at time: Timestamp) {
        let outside = Self.outside(value, check.condition)
        guard var open = state.checks[check.name] else {
            if outside {
                state.checks[check.name] = RuleState.Check(since: time, value: value, extreme: value, raised: false)
            }
            return
        }
        if !open.raised, !outside {
            state.checks[check.name] = nil
            return
        }
        if open.raised, Self.clears(value, check.condition) {
            state.checks[check.name] = nil
            events.append(
                Event(
                    type: .qualityCleared, subject: rule.name, time: time,
                    data: [
                        "machine": .string(rule.name), "check": .string(check.name),
                        "exception_id": .string(exceptionID(check, open)),
                        "severity": .string(check.severity.rawValue), "started_at": .string(open.since.rfc3339),
                        "ended_at": .string(time.rfc3339),
                        "duration_ms": .int(max(0, time.milliseconds - open.since.milliseconds)),
                        "extreme_value": check.condition == .flag ? .null : .double(open.extreme),
                        "reason_code": reason(check), "work_order": workOrder(tag: nil),
                    ]))
            return
        }
        if Self.beyond(value, check.condition) > Self.beyond(open.extreme, check.condition) {
            open.extreme = value
            state.checks[check.name] = open
        }
    }

    /// Raises a pending exception whose condition has held `min_duration` by `time`.
    mutating func raiseIfDue(_ check: MachineConfig.QualityCheck, at time: Timestamp) {
        guard var open = state.checks[check.name], !open.raised,
            time.milliseconds - open.since.milliseconds >= check.minDuration.milliseconds
        else { return }
        open.raised = true
        state.checks[check.name] = open
        var limits: (low: JSONValue, high: JSONValue) = (.null, .null)
        if case let .limits(low, high, _) = check.condition {
            limits = (low.map { .double($0) } ?? .null, high.map { .double($0) } ?? .null)
        }
        events.append(
            Event(
                type: .qualityRaised, subject: rule.name, time: open.since,
                data: [
                    "machine": .string(rule.name), "check": .string(check.name),
                    "exception_id": .string(exceptionID(check, open)),
                    "severity": .string(check.severity.rawValue),
                    "value": check.condition == .flag ? .bool(open.value != 0) : .double(open.value),
                    "low": limits.low, "high": limits.high, "reason_code": reason(check),
                    "work_order": workOrder(tag: nil),
                ]))
    }

    /// Like `downtime_id`: the machine, the check and the start.
    func exceptionID(_ check: MachineConfig.QualityCheck, _ open: RuleState.Check) -> String {
        "\(rule.name)-\(check.name)-\(open.since.milliseconds)"
    }

    func reason(_ check: MachineConfig.QualityCheck) -> JSONValue {
        check.reasonTag.flatMap { values[$0]?.integer }.map { .int($0) } ?? .null
    }

    static func outside(_ value: Double, _ condition: MachineConfig.QualityCheck.Condition) -> Bool {
        beyond(value, condition) > 0
    }

    static func clears(_ value: Double, _ condition: MachineConfig.QualityCheck.Condition) -> Bool {
        switch condition {
        case .flag: value == 0
        case let .limits(low, high, hysteresis):
            value >= (low ?? -.infinity) + hysteresis && value <= (high ?? .infinity) - hysteresis
        }
    }

    /// How far outside the condition's limits `value` is (0 inside); a flag is 1 when on.
    static func beyond(_ value: Double, _ condition: MachineConfig.QualityCheck.Condition) -> Double {
        switch condition {
        case .flag: value != 0 ? 1 : 0
        case let .limits(low, high, _): max(0, value - (high ?? .infinity), (low ?? -.infinity) - value)
        }
    }
}
