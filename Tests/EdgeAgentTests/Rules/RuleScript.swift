import EdgeAgent
import EdgeAgentCore
import Foundation

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

/// Persists and reloads the state as the outbox does: through its JSON.
func restarted(_ engine: RuleEngine) throws -> RuleEngine {
    let json = try JSONEncoder().encode(engine.state)
    return RuleEngine(rules: engine.rules, state: try JSONDecoder().decode(RuleState.self, from: json))
}
