import Foundation
import Yams

/// What `edge-agent simulate` plays: machines that go through phases (state, reason code, parts
/// per second), their registers, and whether the script repeats.
///
/// ```yaml
/// machines:
///   - name: press-1
///     registers: { state: 100, reason: 101, counter: 102, work_order: 120 }
///     counter_start: 63000
///     work_order: WO-1001
///     repeat: true
///     phases:
///       - { state: 1, for: 20s, rate: 5 }
///       - { state: 3, for: 40s, reason: 31 }
/// ```
public struct SimulatorScenario: Decodable, Sendable {
    public var machines: [Machine]

    public struct Machine: Decodable, Sendable {
        public var name: String
        public var registers: Registers
        public var counter_start: UInt16?
        public var work_order: String?
        public var `repeat`: Bool?
        public var phases: [Phase]
    }

    /// Holding-register addresses; the work order takes 8 registers (16 characters).
    public struct Registers: Decodable, Sendable {
        public var state: Int
        public var reason: Int?
        public var counter: Int?
        public var work_order: Int?
    }

    public struct Phase: Decodable, Sendable {
        public var state: UInt16
        public var `for`: String
        public var reason: UInt16?
        /// Parts per second while in this phase.
        public var rate: Double?
    }

    public static func load(path: String) throws -> SimulatorScenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(issues: [ConfigIssue(file: path, line: 1, column: 1, path: "", message: "cannot read the file")])
        }
        return try parse(String(decoding: data, as: UTF8.self))
    }

    public static func parse(_ yaml: String) throws -> SimulatorScenario {
        try YAMLDecoder().decode(SimulatorScenario.self, from: yaml)
    }

    /// The line `demo` and a bare `simulate` play: two presses with stops, faults and setups.
    public static let demo = SimulatorScenario(machines: [
        Machine(name: "press-1", registers: Registers(state: 100, reason: 101, counter: 102, work_order: 120),
                counter_start: 65000, work_order: "WO-2026-0815", repeat: true, phases: [
                    Phase(state: 1, for: "12s", reason: nil, rate: 4), Phase(state: 0, for: "3s", reason: 12, rate: nil),
                    Phase(state: 1, for: "10s", reason: nil, rate: 4), Phase(state: 3, for: "8s", reason: 31, rate: nil),
                    Phase(state: 4, for: "5s", reason: nil, rate: nil), Phase(state: 2, for: "4s", reason: nil, rate: nil),
                ]),
        Machine(name: "press-2", registers: Registers(state: 200, reason: 201, counter: 202, work_order: 220),
                counter_start: 100, work_order: "WO-2026-0816", repeat: true, phases: [
                    Phase(state: 1, for: "20s", reason: nil, rate: 2.5), Phase(state: 0, for: "9s", reason: 7, rate: nil),
                    Phase(state: 1, for: "15s", reason: nil, rate: 2.5), Phase(state: 2, for: "6s", reason: nil, rate: nil),
                ]),
    ])
}
