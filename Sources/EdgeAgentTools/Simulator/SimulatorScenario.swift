import EdgeAgent
import EdgeAgentCore
import Foundation
import Yams

/// What `edge-agent simulate` plays: machines that go through phases (state, reason code, parts
/// per second), their registers, and whether the script repeats; optionally a resin totalizer that
/// follows the parts, a melt temperature with one excursion, and work orders that follow each
/// other (the last one stays; an empty one means no order).
///
/// ```yaml
/// machines:
///   - name: press-1
///     registers: { state: 100, reason: 101, counter: 102, work_order: 120, resin: 130, melt: 150 }
///     counter_start: 63000
///     work_orders: [WO-1001, WO-1002]
///     order_length: 35s
///     resin_per_part: 0.5          # kg; the uint32 totalizer holds whole kg
///     melt: { nominal: 245, peak: 268, at: 14s, for: 9s }   # float32; one excursion, 1 s ramps
///     repeat: true
///     phases:
///       - { state: 1, for: 20s, rate: 5 }
///       - { state: 3, for: 40s, reason: 31 }
/// ```
public struct SimulatorScenario: Decodable, Sendable {
    public var machines: [Machine]
    /// The state every machine shows once the line is stopped at the end of a timed run (default 2, idle).
    public var end_state: UInt16?

    public struct Machine: Decodable, Sendable {
        public var name: String
        public var registers: Registers
        public var counter_start: UInt16?
        public var work_order: String?
        public var work_orders: [String]?
        public var order_length: String?
        public var resin_per_part: Double?
        public var melt: Melt?
        public var `repeat`: Bool?
        public var phases: [Phase]

        /// The orders in the order they run: `work_orders`, else the one `work_order`.
        var orders: [String] { work_orders ?? work_order.map { [$0] } ?? [] }
    }

    /// A melt temperature at `nominal`, except once: from `at` for `for`, ramping to `peak` in a
    /// second, holding, and back in the last second.
    public struct Melt: Decodable, Sendable {
        public var nominal: Double
        public var peak: Double
        public var at: String
        public var `for`: String
    }

    /// Holding-register addresses; the work order takes 8 registers (16 characters), the resin
    /// totalizer (uint32) and the melt temperature (float32) two each, high word first.
    public struct Registers: Decodable, Sendable {
        public var state: Int
        public var reason: Int?
        public var counter: Int?
        public var work_order: Int?
        public var resin: Int?
        public var melt: Int?
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
            throw ConfigError(issues: [
                ConfigIssue(file: path, line: 1, column: 1, path: "", message: "cannot read the file")
            ])
        }
        return try parse(String(decoding: data, as: UTF8.self))
    }

    public static func parse(_ yaml: String) throws -> SimulatorScenario {
        try YAMLDecoder().decode(SimulatorScenario.self, from: yaml)
    }

    /// The line `demo` and a bare `simulate` play: two presses with stops, faults and setups;
    /// press-1 also uses resin, runs hot once (14 s to 23 s) and changes its order during its
    /// first setup (35 s).
    public static let demo = SimulatorScenario(machines: [
        Machine(
            name: "press-1",
            registers: Registers(state: 100, reason: 101, counter: 102, work_order: 120, resin: 130, melt: 150),
            counter_start: 65000, work_orders: ["WO-2026-0815", "WO-2026-0817"], order_length: "35s",
            resin_per_part: 0.5,
            melt: Melt(nominal: 245, peak: 268, at: "14s", for: "9s"), repeat: true,
            phases: [
                Phase(state: 1, for: "12s", reason: nil, rate: 4), Phase(state: 0, for: "3s", reason: 12, rate: nil),
                Phase(state: 1, for: "10s", reason: nil, rate: 4), Phase(state: 3, for: "8s", reason: 31, rate: nil),
                Phase(state: 4, for: "5s", reason: nil, rate: nil), Phase(state: 2, for: "4s", reason: nil, rate: nil),
            ]),
        Machine(
            name: "press-2",
            registers: Registers(state: 200, reason: 201, counter: 202, work_order: 220, resin: nil, melt: nil),
            counter_start: 100, work_order: "WO-2026-0816", repeat: true,
            phases: [
                Phase(state: 1, for: "20s", reason: nil, rate: 2.5), Phase(state: 0, for: "9s", reason: 7, rate: nil),
                Phase(state: 1, for: "15s", reason: nil, rate: 2.5), Phase(state: 2, for: "6s", reason: nil, rate: nil),
            ]),
    ])
}
