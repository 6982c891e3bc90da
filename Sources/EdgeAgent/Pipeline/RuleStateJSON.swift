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

    /// Every value goes through here: its comma, then its text.
    private mutating func value(_ write: (inout [UInt8]) -> Void) {
        if afterValue { bytes.append(UInt8(ascii: ",")) }
        write(&bytes)
        afterValue = true
    }

    private mutating func container(_ open: Character, _ close: Character, _ body: (inout JSONWriter) -> Void) {
        value { $0.append(open.asciiValue!) }
        afterValue = false
        body(&self)
        bytes.append(close.asciiValue!)
        afterValue = true
    }

    mutating func key(_ key: String) {
        value {
            JSONValue.writeString(key, to: &$0)
            $0.append(UInt8(ascii: ":"))
        }
        afterValue = false
    }

    mutating func object(_ body: (inout JSONWriter) -> Void) { container("{", "}", body) }

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
        container("[", "]") { w in for item in items { body(&w, item) } }
    }

    mutating func string(_ text: String) { value { JSONValue.writeString(text, to: &$0) } }
    mutating func number(_ n: Int64) { value { JSONValue.writeInteger(n, to: &$0) } }
    mutating func number(_ n: UInt64) { value { JSONValue.writeInteger(n, to: &$0) } }

    mutating func number(_ n: Double) {
        guard n.isFinite else {
            let nonFinite = RuleStateStore.nonFinite
            return string(n.isNaN ? nonFinite.nan : n > 0 ? nonFinite.positive : nonFinite.negative)
        }
        value { $0.append(contentsOf: n.description.utf8) }
    }

    /// A field whose value is left out when it is nil, as the synthesized `Encodable` does.
    mutating func field<V>(_ name: String, _ v: V?, _ write: (inout JSONWriter, V) -> Void) {
        guard let v else { return }
        key(name)
        write(&self, v)
    }

    mutating func field(_ name: String, _ v: String?) { field(name, v) { $0.string($1) } }
    mutating func field(_ name: String, _ v: Int64?) { field(name, v) { $0.number($1) } }
    mutating func field(_ name: String, _ v: UInt64?) { field(name, v) { $0.number($1) } }
    mutating func field(_ name: String, _ v: Double?) { field(name, v) { $0.number($1) } }
    mutating func field(_ name: String, _ v: Timestamp?) { field(name, v?.milliseconds) }
    mutating func field(_ name: String, _ v: Bool) {
        key(name)
        value { $0.append(contentsOf: (v ? "true" : "false").utf8) }
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
