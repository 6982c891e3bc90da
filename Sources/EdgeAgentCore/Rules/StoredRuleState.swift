/// How the pipeline keeps the rule state in the outbox's `state` table: a row per machine, context
/// value and device of published tags, written with the events of the reading that changed it; a
/// row left with nothing to hold is deleted.
///
/// | key | value |
/// |---|---|
/// | `rules.machine.NAME` | the machine's JSON (`storedJSON`; non-finite numbers as `"nan"`, `"inf"`, `"-inf"`) |
/// | `rules.value.TAG` | the context value's `TagValue.storedText` (`i:7`) |
/// | `rules.published-tags.DEVICE` | the device's published tags: a JSON object of each tag's `text` (`{"plc.t0":"g d:20.5"}`) |
///
/// A device's published tags share one row because a poll changes most of them at once: one row
/// written per reading instead of one per tag. The device is the part of a tag's name before its
/// last dot (`RuleState.PublishedTags.device`), and the state keeps each device's tags apart, so
/// a reading's rows cost its own device's tags. Entries change with the readings, so every row's
/// text is built without a JSON coder; only the load at start (in the agent) decodes with
/// `JSONDecoder`. A store from before the rows holds the whole state in one JSON row, `rules`,
/// and one from before the devices' rows holds a row per published tag, `rules.published.TAG`
/// (its `text`): both are read once and replaced at the first commit.
public enum StoredRuleState {
    /// A row of the `state` table: a nil value removes it.
    public typealias Row = (key: String, value: String?)

    public static let legacyKey = "rules"
    public static let machinePrefix = "rules.machine.", valuePrefix = "rules.value.",
        publishedPrefix = "rules.published-tags.", tagPublishedPrefix = "rules.published."
    public static let nonFinite = (positive: "inf", negative: "-inf", nan: "nan")

    public static func key(_ entry: RuleState.Entry) -> String {
        switch entry {
        case let .machine(name): machinePrefix + name
        case let .value(tag): valuePrefix + tag
        case let .published(tag): publishedPrefix + RuleState.PublishedTags.device(of: tag)
        }
    }

    /// The rows that store `entries` of `state`. The published entries' devices are rewritten
    /// whole, once each, from their own tags.
    public static func rows(_ entries: [RuleState.Entry], of state: RuleState) -> [Row] {
        var rows: [Row] = []
        var devices = Set<Substring>()
        for entry in entries {
            switch entry {
            case let .machine(name): rows.append((key(entry), state.machines[name]?.storedJSON))
            case let .value(tag): rows.append((key(entry), state.values[tag]?.storedText))
            case let .published(tag): devices.insert(RuleState.PublishedTags.device(of: tag))
            }
        }
        for device in devices {
            rows.append((publishedPrefix + device, state.published.devices[device].map(row)))
        }
        return rows
    }

    /// A device's published tags as its row holds them: a JSON object of each tag's `text`.
    private static func row(_ tags: [String: RuleState.Published]) -> String {
        var json = [UInt8(ascii: "{")]
        for (tag, published) in tags {
            if json.count > 1 { json.append(UInt8(ascii: ",")) }
            JSONValue.writeString(tag, to: &json)
            json.append(UInt8(ascii: ":"))
            JSONValue.writeString(text(published), to: &json)
        }
        return String(decoding: json, as: UTF8.self) + "}"
    }

    public static func text(_ published: RuleState.Published) -> String {
        (published.quality == .good ? "g" : "b") + (published.value.map { " " + $0.storedText } ?? "")
    }

    public static func published(_ text: String) -> RuleState.Published? {
        let quality: Sample.Quality
        switch text.first {
        case "g": quality = .good
        case "b": quality = .bad
        default: return nil
        }
        guard text.count > 1 else { return RuleState.Published(value: nil, quality: quality) }
        guard text.dropFirst().first == " ", let value = TagValue(storedText: text.dropFirst(2)) else { return nil }
        return RuleState.Published(value: value, quality: quality)
    }

    /// Rows for every entry of `state`, and `stale` ones removed: the first commit after a load
    /// that found any, so what is stored is again exactly the state.
    public static func rewriteRows(of state: RuleState, removing stale: [String]) -> [Row] {
        let rows = rows(state.entries, of: state)
        let written = Set(rows.map(\.key))
        return stale.filter { !written.contains($0) }.map { ($0, nil) } + rows
    }
}

/// A machine's rule state as the JSON its `Codable` conformance reads: the synthesized keys,
/// absent optionals left out, a `Timestamp` as its milliseconds, non-finite numbers as the
/// strings `StoredRuleState.nonFinite` names. Built as a `JSONValue` (the writer events use)
/// because the pipeline stores a machine with every reading that moves one of its counters, and
/// Foundation's `JSONEncoder` boxes every value through its generic containers. `JSONDecoder`
/// reads it at start, once.
///
/// A field added to a `RuleState` type must be written here too: the round-trip tests
/// (`RuleStateJSONTests`, and every rule test that restarts its engine through the stored rows)
/// compare what is read back with what was written.
extension RuleState.Machine {
    public var storedJSON: String {
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

    /// A number as the state's decoder reads it: non-finite ones as `StoredRuleState.nonFinite`'s strings.
    fileprivate static func stored(_ number: Double) -> JSONValue {
        let names = StoredRuleState.nonFinite
        return number.isFinite
            ? .double(number) : .string(number.isNaN ? names.nan : number > 0 ? names.positive : names.negative)
    }
}
