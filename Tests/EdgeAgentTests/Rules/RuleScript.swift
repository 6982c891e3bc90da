import EdgeAgentCore
import Foundation

@testable import EdgeAgent

/// Scripted readings for rule tests: `at(12, "press-1.state", 3)` is a good sample 12 s into the shift.
let shiftStart: Int64 = 1_795_000_000_000

func at(_ seconds: Double, _ tag: String, _ value: TagValue?, _ quality: Sample.Quality = .good) -> Sample {
    Sample(tag: tag, value: value, quality: quality, time: Timestamp(milliseconds: shiftStart + Int64(seconds * 1000)))
}

func at(_ seconds: Double, _ tag: String, _ value: Int64) -> Sample { at(seconds, tag, .int(value)) }

func time(_ seconds: Double) -> Timestamp { Timestamp(milliseconds: shiftStart + Int64(seconds * 1000)) }

let pressStates: [(code: Int64, state: String)] = [
    (0, "stopped"), (1, "running"), (2, "idle"), (3, "fault"), (4, "setup"),
]

func press(minDowntime: Duration = .seconds(30), counters: [RuleSet.Counter] = []) -> RuleSet.Machine {
    RuleSet.Machine(
        name: "press-1",
        state: .init(
            source: .map(tag: "press-1.state", codes: pressStates),
            downtime: ["stopped", "fault"], reasonTag: "press-1.reason",
            minDowntime: minDowntime), counters: counters)
}

extension Event {
    func int(_ key: String) -> Int64? { if case let .int(v)? = data[key] { return v } else { return nil } }
    func string(_ key: String) -> String? { if case let .string(v)? = data[key] { return v } else { return nil } }
    func isNull(_ key: String) -> Bool { data[key] == .null }
}

/// Persists and reloads the state as the outbox does: through its rows.
func restarted(_ engine: RuleEngine) throws -> RuleEngine {
    var table = StateTable()
    table.store(engine.state.entries, of: engine.state)
    return RuleEngine(rules: engine.rules, state: try table.load())
}

/// The outbox's `state` table as the pipeline writes it (`StoredRuleState`), in memory.
struct StateTable {
    var rows: [String: String] = [:]

    mutating func store(_ entries: [RuleState.Entry], of state: RuleState) {
        for (key, value) in StoredRuleState.rows(entries, of: state) { rows[key] = value }
    }

    func load() throws -> RuleState {
        let loaded = StoredRuleState.load(rows)
        if let (key, error) = loaded.errors.first { throw StateTableError(key: key, error: error) }
        return loaded.state
    }
}

struct StateTableError: Error {
    let key: String
    let error: any Error
}
