import EdgeAgentCore
import Foundation

/// How the pipeline keeps the rule state in the outbox's `state` table: a row per entry
/// (`rules.machine.NAME`, `rules.value.TAG`, `rules.published.TAG`), each the entry's JSON
/// (`null` for a value that is gone), written with the events of the reading that changed it.
/// Before 0.7 the whole state was one row, `rules`: it is read once and replaced by the rows at
/// the first commit.
struct RuleStateStore {
    static let legacyKey = "rules"
    static let machinePrefix = "rules.machine.", valuePrefix = "rules.value.", publishedPrefix = "rules.published."

    private let encoder = JSONEncoder()

    static func key(_ entry: RuleState.Entry) -> String {
        switch entry {
        case let .machine(name): machinePrefix + name
        case let .value(tag): valuePrefix + tag
        case let .published(tag): publishedPrefix + tag
        }
    }

    /// The rows that store `entries` of `state`.
    func rows(_ entries: [RuleState.Entry], of state: RuleState) throws -> [StateRow] {
        try entries.map { entry in
            let json: Data =
                switch entry {
                case let .machine(name): try encoder.encode(state.machines[name])
                case let .value(tag): try encoder.encode(state.values[tag])
                case let .published(tag): try encoder.encode(state.published[tag])
                }
            return (Self.key(entry), String(decoding: json, as: UTF8.self))
        }
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
    func rewriteRows(of state: RuleState, removing stale: [String]) throws -> [StateRow] {
        let rows = try rows(state.entries, of: state)
        let written = Set(rows.map(\.key))
        return stale.filter { !written.contains($0) }.map { ($0, nil) } + rows
    }

    /// The state stored in `rows` (the whole `state` table; other producers' rows are ignored).
    /// A row that cannot be read loses only its entry (a counter takes a new baseline).
    static func load(_ rows: [String: String]) -> Loaded {
        let decoder = JSONDecoder()
        var loaded = Loaded()
        func read<T: Decodable>(_ key: String, as type: T.Type) -> T? {
            do {
                return try decoder.decode(T?.self, from: Data(rows[key]!.utf8))
            } catch {
                loaded.stale.append(key)
                loaded.errors.append((key, error))
                return nil
            }
        }
        if rows[legacyKey] != nil {
            loaded.state = read(legacyKey, as: RuleState.self) ?? RuleState()
            if !loaded.stale.contains(legacyKey) { loaded.stale.append(legacyKey) }
            return loaded
        }
        for key in rows.keys {
            if key.hasPrefix(machinePrefix) {
                loaded.state.machines[String(key.dropFirst(machinePrefix.count))] = read(
                    key, as: RuleState.Machine.self)
            } else if key.hasPrefix(valuePrefix) {
                loaded.state.values[String(key.dropFirst(valuePrefix.count))] = read(key, as: TagValue.self)
            } else if key.hasPrefix(publishedPrefix) {
                loaded.state.published[String(key.dropFirst(publishedPrefix.count))] = read(
                    key, as: RuleState.Published.self)
            }
        }
        return loaded
    }
}
