import EdgeAgentCore

/// A machine's rule state as the JSON its `Codable` conformance reads: the synthesized keys,
/// absent optionals left out, a `Timestamp` as its milliseconds, non-finite numbers as the
/// strings `RuleStateStore.nonFinite` names. Written byte by byte because the pipeline stores a
/// machine with every reading that moves one of its counters, and Foundation's `JSONEncoder`
/// (boxing every value through its generic containers) was the largest cost of an agent that
/// only produces business events. `JSONDecoder` reads it at start, once.
///
/// A field added to a `RuleState` type must be written here too: the round-trip tests
/// (`RuleStateJSONTests`, and every rule test that restarts its engine through the stored rows)
/// compare what is read back with what was written.
extension RuleState.Machine {
    var storedJSON: String {
        var w = JSONWriter()
        w.object {
            $0.field("state", state)
            $0.field("since", since)
            if let downtime {
                $0.key("downtime")
                $0.object {
                    $0.field("id", downtime.id)
                    $0.field("startedAt", downtime.startedAt)
                    $0.field("openingState", downtime.openingState)
                    $0.field("lastState", downtime.lastState)
                    $0.field("reasonAtStart", downtime.reasonAtStart)
                    $0.field("announced", downtime.announced)
                }
            }
            $0.key("counters")
            $0.object(counters) { w, counter in
                w.field("last", counter.last)
                w.field("pending", counter.pending) { w, q in w.number(q) }
            }
            $0.key("materials")
            $0.object(materials) { w, totalizer in
                w.field("last", totalizer.last)
                w.field("pending", totalizer.pending) { w, q in w.number(q) }
            }
            $0.key("checks")
            $0.object(checks) { w, check in
                w.field("since", check.since)
                w.field("value", check.value)
                w.field("extreme", check.extreme)
                w.field("raised", check.raised)
            }
            $0.field("orderValue", orderValue)
            if let workOrder {
                $0.key("workOrder")
                $0.object {
                    $0.field("id", workOrder.id)
                    $0.field("startedAt", workOrder.startedAt)
                    $0.field("good", workOrder.good)
                    $0.field("scrap", workOrder.scrap)
                    $0.key("materials")
                    $0.array(workOrder.materials) { w, total in
                        w.object {
                            $0.field("material", total.material)
                            $0.field("quantity", total.quantity)
                            $0.field("unit", total.unit)
                            $0.field("integral", total.integral)
                        }
                    }
                    $0.field("downtimeMs", workOrder.downtimeMs)
                }
            }
        }
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

/// Appends JSON text: a value after a value gets its comma, a key its colon.
private struct JSONWriter {
    var bytes: [UInt8] = []
    private var afterValue = false

    private mutating func separate() {
        if afterValue { bytes.append(UInt8(ascii: ",")) }
        afterValue = false
    }

    private mutating func wrote() { afterValue = true }

    mutating func key(_ key: String) {
        separate()
        JSONValue.writeString(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func object(_ body: (inout JSONWriter) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "{"))
        body(&self)
        afterValue = false
        bytes.append(UInt8(ascii: "}"))
        wrote()
    }

    /// A dictionary of objects, each written by `body` inside its braces.
    mutating func object<T>(_ entries: [String: T], _ body: (inout JSONWriter, T) -> Void) {
        object { w in
            for (name, entry) in entries {
                w.key(name)
                w.object { body(&$0, entry) }
            }
        }
    }

    mutating func array<T>(_ items: [T], _ body: (inout JSONWriter, T) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "["))
        for item in items { body(&self, item) }
        afterValue = false
        bytes.append(UInt8(ascii: "]"))
        wrote()
    }

    mutating func string(_ value: String) {
        separate()
        JSONValue.writeString(value, to: &bytes)
        wrote()
    }

    mutating func number(_ value: Int64) {
        separate()
        JSONValue.writeInteger(value, to: &bytes)
        wrote()
    }

    mutating func number(_ value: UInt64) {
        separate()
        JSONValue.writeInteger(value, to: &bytes)
        wrote()
    }

    mutating func number(_ value: Double) {
        guard value.isFinite else {
            let nonFinite = RuleStateStore.nonFinite
            return string(value.isNaN ? nonFinite.nan : value > 0 ? nonFinite.positive : nonFinite.negative)
        }
        separate()
        bytes.append(contentsOf: value.description.utf8)
        wrote()
    }

    mutating func field(_ name: String, _ value: String?) {
        if let value {
            key(name)
            string(value)
        }
    }
    mutating func field(_ name: String, _ value: Int64?) {
        if let value {
            key(name)
            number(value)
        }
    }
    mutating func field(_ name: String, _ value: UInt64?) {
        if let value {
            key(name)
            number(value)
        }
    }
    mutating func field(_ name: String, _ value: Double?) {
        if let value {
            key(name)
            number(value)
        }
    }
    mutating func field(_ name: String, _ value: Timestamp?) { field(name, value?.milliseconds) }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
        wrote()
    }

    /// A pending sum (`RuleState.Pending`), its quantities written by `number`.
    mutating func field<Q>(
        _ name: String, _ pending: RuleState.Pending<Q>?, _ number: (inout JSONWriter, Q) -> Void
    ) {
        guard let pending else { return }
        key(name)
        object {
            $0.key("quantity")
            number(&$0, pending.quantity)
            $0.key("from")
            number(&$0, pending.from)
            $0.key("to")
            number(&$0, pending.to)
            $0.field("firstTime", pending.firstTime)
            $0.field("lastTime", pending.lastTime)
        }
    }
}
