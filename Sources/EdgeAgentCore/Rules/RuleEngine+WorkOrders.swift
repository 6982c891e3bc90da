/// Work orders (SPEC 7): the order tag's first reading starts an order; a change completes the
/// running one with its totals and starts the next; an empty value completes it and starts none.
///
/// Totals are the sums of the events that carried the order (`production.completed` → good,
/// `production.scrapped` → scrap, `material.consumed` → materials by item), and `downtime_ms` the
/// overlap of the order with the downtimes announced (`machine.downtime.started`) before it
/// completed: a stop that reaches `min_downtime` only after the change counts for the next order.
/// `min_interval` sums still open at a change are emitted first, so they belong to the old order.
extension RuleEngine.MachineStep {
    /// An order tag's value as text: a string as read, a whole number in decimal.
    static func orderText(_ value: TagValue) -> String? {
        if case let .string(s) = value { return s }
        return value.integer.map { String($0) }
    }

    /// The order an event carries: a counter's own `work_order_tag` as read, else the order the
    /// machine runs.
    func workOrder(tag: String?) -> JSONValue {
        if let tag { return values[tag].flatMap(Self.orderText).map { .string($0) } ?? .null }
        return state.workOrder.map { .string($0.id) } ?? .null
    }

    /// Whether an event carrying `order` counts toward the running order's totals.
    func carriesRunningOrder(_ order: JSONValue) -> Bool {
        state.workOrder.map { order == .string($0.id) } ?? false
    }

    mutating func changeOrder(to value: String, at time: Timestamp) {
        guard state.orderValue != value else { return }
        flush(dueAt: nil)
        let previous = state.workOrder
        if var order = previous {
            if let downtime = state.downtime, downtime.announced {
                order.downtimeMs += Self.overlap(downtime.startedAt, time, order)
            }
            let materials: [(String, JSONValue)] = order.materials.map { total in
                (
                    total.material,
                    [
                        "quantity": total.integral ? .int(Int64(total.quantity)) : .double(total.quantity),
                        "unit": .string(total.unit),
                    ]
                )
            }
            events.append(
                Event(
                    type: .workOrderCompleted, subject: rule.name, time: time,
                    data: [
                        "machine": .string(rule.name), "work_order": .string(order.id),
                        "started_at": .string(order.startedAt.rfc3339),
                        "ended_at": .string(time.rfc3339),
                        "duration_ms": .int(max(0, time.milliseconds - order.startedAt.milliseconds)),
                        "good": .int(order.good), "scrap": .int(order.scrap), "unit": .string(rule.countUnit),
                        "materials": .object(materials), "downtime_ms": .int(order.downtimeMs),
                    ]))
        }
        state.orderValue = value
        state.workOrder = value.isEmpty ? nil : RuleState.WorkOrder(id: value, startedAt: time)
        if !value.isEmpty {
            events.append(
                Event(
                    type: .workOrderStarted, subject: rule.name, time: time,
                    data: [
                        "machine": .string(rule.name), "work_order": .string(value),
                        "previous_work_order": previous.map { .string($0.id) } ?? .null,
                    ]))
        }
    }

    /// How much of the downtime from `start` to `end` fell within `order`.
    static func overlap(_ start: Timestamp, _ end: Timestamp, _ order: RuleState.WorkOrder) -> Int64 {
        max(0, end.milliseconds - max(start.milliseconds, order.startedAt.milliseconds))
    }
}
