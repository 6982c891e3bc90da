import EdgeAgentCore
import Foundation

/// How the pipeline keeps the rule state in the outbox's `state` table: a row per entry, written
/// with the events of the reading that changed it; an entry that is gone deletes its row.
///
/// | key | value |
/// |---|---|
/// | `rules.machine.NAME` | the machine's JSON (`storedJSON`; non-finite numbers as `"nan"`, `"inf"`, `"-inf"`) |
/// | `rules.value.TAG` | the context value's `TagValue.storedText` (`i:7`) |
/// | `rules.published.TAG` | `g` or `b` (quality), then a space and the value's `storedText` if it has one (`g d:20.5`) |
///
/// Entries change with the readings, so every row's text is built without a JSON coder; only the
/// load at start decodes a machine with `JSONDecoder`. Before 0.7 the whole state was one JSON
/// row, `rules`: it is read once and replaced by the rows at the first commit.
struct RuleStateStore {
    static let legacyKey = "rules"
    static let machinePrefix = "rules.machine.", valuePrefix = "rules.value.", publishedPrefix = "rules.published."
    static let nonFinite = (positive: "inf", negative: "-inf", nan: "nan")

    static func key(_ entry: RuleState.Entry) -> String {
        switch entry {
        case let .machine(name): machinePrefix + name
        case let .value(tag): valuePrefix + tag
        case let .published(tag): publishedPrefix + tag
        }
    }

    /// The rows that store `entries` of `state`.
    func rows(_ entries: [RuleState.Entry], of state: RuleState) -> [StateRow] {
        entries.map { entry in
            switch entry {
            case let .machine(name):
                (Self.key(entry), state.machines[name]?.storedJSON)
            case let .value(tag): (Self.key(entry), state.values[tag]?.storedText)
            case let .published(tag): (Self.key(entry), state.published[tag].map(Self.text))
            }
        }
    }

    static func text(_ published: RuleState.Published) -> String {
        (published.quality == .good ? "g" : "b") + (published.value.map { " " + $0.storedText } ?? "")
    }

    static func published(_ text: String) -> RuleState.Published? {
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

    /// What was stored: the state, and the rows the first commit must replace (the pre-0.7 row,
    /// rows that could not be read) with what they failed to say.
    struct Loaded {
        var state = RuleState()
        var stale: [String] = []
        var errors: [(key: String, error: any Error)] = []
    }

    /// Rows for every entry of `state`, and `stale` ones removed: the first commit after a load
    /// that found any, so what is stored is again exactly the state.
    func rewriteRows(of state: RuleState, removing stale: [String]) -> [StateRow] {
        let rows = rows(state.entries, of: state)
        let written = Set(rows.map(\.key))
        return stale.filter { !written.contains($0) }.map { ($0, nil) } + rows
    }

    /// The state stored in `rows` (the whole `state` table; other producers' rows are ignored).
    /// A row that cannot be read loses only its entry (a counter takes a new baseline).
    static func load(_ rows: [String: String]) -> Loaded {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: nonFinite.positive, negativeInfinity: nonFinite.negative, nan: nonFinite.nan)
        var loaded = Loaded()
        func failed(_ key: String, _ error: any Error) {
            loaded.stale.append(key)
            loaded.errors.append((key, error))
        }
        func read<T: Decodable>(_ key: String, as type: T.Type) -> T? {
            do {
                return try decoder.decode(T.self, from: Data(rows[key]!.utf8))
            } catch {
                failed(key, error)
                return nil
            }
        }
        if rows[legacyKey] != nil {
            loaded.state = read(legacyKey, as: RuleState.self) ?? RuleState()
            if !loaded.stale.contains(legacyKey) { loaded.stale.append(legacyKey) }
            return loaded
        }
        for (key, text) in rows {
            if key.hasPrefix(machinePrefix) {
                loaded.state.machines[String(key.dropFirst(machinePrefix.count))] = read(
                    key, as: RuleState.Machine.self)
            } else if key.hasPrefix(valuePrefix) {
                guard let value = TagValue(storedText: Substring(text)) else {
                    failed(key, UnreadableRow(text: text))
                    continue
                }
                loaded.state.values[String(key.dropFirst(valuePrefix.count))] = value
            } else if key.hasPrefix(publishedPrefix) {
                guard let published = published(text) else {
                    failed(key, UnreadableRow(text: text))
                    continue
                }
                loaded.state.published[String(key.dropFirst(publishedPrefix.count))] = published
            }
        }
        return loaded
    }

    struct UnreadableRow: Error, CustomStringConvertible {
        var text: String
        var description: String { "not a stored value: \(text.prefix(80))" }
    }
}
