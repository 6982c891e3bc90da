import EdgeAgentCore
import Foundation

/// Reading the stored rule state at start: the one part that needs `JSONDecoder`.
extension StoredRuleState {
    /// What was stored: the state, and the rows the first commit must replace (an older store's `rules` row
    /// or published tags' rows, rows that could not be read) with what they failed to say.
    struct Loaded {
        var state = RuleState()
        var stale: [String] = []
        var errors: [(key: String, error: any Error)] = []
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
        // A tag's own row (an older version's) is read after the devices' rows: where both hold a
        // tag, it is the later one (that version ran last).
        var tagRows: [(key: String, text: String)] = []
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
                guard let tags = read(key, as: [String: String].self) else { continue }
                for (tag, text) in tags {
                    guard let published = published(text) else {
                        failed(key, UnreadableRow(text: text))
                        continue
                    }
                    loaded.state.published[tag] = published
                }
            } else if key.hasPrefix(tagPublishedPrefix) {
                tagRows.append((key, text))
            }
        }
        for (key, text) in tagRows {
            guard let published = published(text) else {
                failed(key, UnreadableRow(text: text))
                continue
            }
            loaded.stale.append(key)
            loaded.state.published[String(key.dropFirst(tagPublishedPrefix.count))] = published
        }
        return loaded
    }

    struct UnreadableRow: Error, CustomStringConvertible {
        var text: String
        var description: String { "not a stored value: \(text.prefix(80))" }
    }
}
