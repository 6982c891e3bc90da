import EdgeAgentCore

/// A machine's rule state as the JSON its `Codable` conformance reads: the synthesized keys,
/// absent optionals left out, a `Timestamp` as its milliseconds, non-finite numbers as the
/// strings `RuleStateStore.nonFinite` names. Built as a `JSONValue` (the writer events use)
/// because the pipeline stores a machine with every reading that moves one of its counters, and
/// Foundation's `JSONEncoder` (boxing every value through its generic containers) was the largest
/// cost of an agent that only produces business events. `JSONDecoder` reads it at start, once.
///
/// A field added to a `RuleState` type must be written here too: the round-trip tests
/// (`RuleStateJSONTests`, and every rule test that restarts its engine through the stored rows)
/// compare what is read back with what was written.
extension RuleState.Machine {
    var storedJSON: String {
        JSONValue.fields([
            "state": state.map(JSONValue.string),
            "since": since.map(\.stored),
            "downtime": downtime.map {
                .fields([
                    "id": .string($0.id), "startedAt": $0.startedAt.stored, "openingState": .string($0.openingState),
                    "lastState": .string($0.lastState), "reasonAtStart": $0.reasonAtStart.map(JSONValue.int),
                    "announced": .bool($0.announced),
                ])
            },
            "counters": .object(
                counters.map {
                    ($0, .fields(["last": $1.last.map(JSONValue.uint), "pending": $1.pending?.stored(JSONValue.uint)]))
                }
            ),
            "materials": .object(
                materials.map {
                    (
                        $0,
                        .fields([
                            "last": $1.last.map(JSONValue.stored), "pending": $1.pending?.stored(JSONValue.stored),
                        ])
                    )
                }),
            "checks": .object(
                checks.map {
                    (
                        $0,
                        .fields([
                            "since": $1.since.stored, "value": .stored($1.value), "extreme": .stored($1.extreme),
                            "raised": .bool($1.raised),
                        ])
                    )
                }),
            "orderValue": orderValue.map(JSONValue.string),
            "workOrder": workOrder.map {
                .fields([
                    "id": .string($0.id), "startedAt": $0.startedAt.stored, "good": .int($0.good),
                    "scrap": .int($0.scrap),
                    "materials": .array(
                        $0.materials.map {
                            .fields([
                                "material": .string($0.material), "quantity": .stored($0.quantity),
                                "unit": .string($0.unit), "integral": .bool($0.integral),
                            ])
                        }),
                    "downtimeMs": .int($0.downtimeMs),
                ])
            },
        ]).json
    }
}

extension RuleState.Pending {
    fileprivate func stored(_ number: (Quantity) -> JSONValue) -> JSONValue {
        .fields([
            "quantity": number(quantity), "from": number(from), "to": number(to), "firstTime": firstTime.stored,
            "lastTime": lastTime.stored,
        ])
    }
}

extension Timestamp {
    fileprivate var stored: JSONValue { .int(milliseconds) }
}

extension JSONValue {
    /// An object of the fields present: a nil is left out, as the synthesized `Encodable` does.
    fileprivate static func fields(_ fields: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        .object(fields.compactMap { key, value in value.map { (key, $0) } })
    }

    /// A number as the state's decoder reads it: non-finite ones as `RuleStateStore.nonFinite`'s strings.
    fileprivate static func stored(_ number: Double) -> JSONValue {
        let names = RuleStateStore.nonFinite
        return number.isFinite
            ? .double(number) : .string(number.isNaN ? names.nan : number > 0 ? names.positive : names.negative)
    }
}
