import EdgeAgent
import EdgeAgentCore

/// `rules.eval`: readings per second through the `RuleEngine` for 10 machines, each with state, 2
/// counters, 2 materials, 3 quality checks and a work order, and the samples/s that makes; best of
/// 3. A reading is one poll of all 10 machines' 11 tags (110 samples at one time). Reported only:
/// no baseline (a cheaper rule set would say what the other rules cost, not how fast these run).
enum RulesEvalBench {
    static let machines = 10
    static let readings = 60_000

    static func rules() -> RuleSet {
        RuleSet(
            machines: (0..<machines).map { m in
                let name = "press-\(m)"
                let state = MachineConfig.StateRule(
                    source: .map(
                        tag: "\(name).state", codes: [(0, "stopped"), (1, "running"), (2, "idle"), (3, "fault")]),
                    downtime: ["stopped", "fault"], reasonTag: "\(name).reason", minDowntime: .seconds(30))
                return RuleSet.Machine(
                    name: name, state: state,
                    counters: [
                        RuleSet.Counter(tag: "\(name).good", range: 65536),
                        RuleSet.Counter(tag: "\(name).scrap", event: .productionScrapped, range: 65536),
                    ],
                    workOrderTag: "\(name).order",
                    materials: [
                        RuleSet.Material(
                            tag: "\(name).resin", material: .fixed("PA66"), lotTag: "\(name).lot", unit: "kg",
                            range: 4_294_967_296, integral: true),
                        RuleSet.Material(tag: "\(name).colour", material: .fixed("MB-BLACK"), unit: "kg"),
                    ],
                    quality: [
                        MachineConfig.QualityCheck(
                            name: "melt", tag: "\(name).melt", condition: .limits(low: 230, high: 260, hysteresis: 2),
                            minDuration: .seconds(5)),
                        MachineConfig.QualityCheck(
                            name: "pressure", tag: "\(name).pressure",
                            condition: .limits(low: nil, high: 900, hysteresis: 10)),
                        MachineConfig.QualityCheck(
                            name: "gate", tag: "\(name).gate", condition: .flag, reasonTag: "\(name).reason"),
                    ])
            })
    }

    /// A shift at 250 ms polls: a part every 2 s, a scrap every 50 s, a kg of resin every 4 s and
    /// 0.125 kg of colour every 8 s, a stop every 100 s, a melt excursion every 500 s, an order
    /// change every 1,250 s; the rest of the time the values move without crossing a limit.
    static func shift() -> [[Sample]] {
        (0..<readings).map { r in
            let time = Timestamp(milliseconds: 1_795_000_000_000 + Int64(r) * 250)
            return (0..<machines).flatMap { m -> [Sample] in
                let name = "press-\(m)"
                let running = (r + m * 37) % 400 >= 20
                let hot = (r + m * 111) % 2000 < 40
                func s(_ tag: String, _ value: TagValue) -> Sample {
                    Sample(tag: "\(name).\(tag)", value: value, time: time)
                }
                return [
                    s("state", .uint(running ? 1 : 0)), s("reason", .uint(running ? 0 : 12)),
                    s("good", .uint(UInt64(r / 8 % 65536))),
                    s("scrap", .uint(UInt64(r / 200 % 65536))), s("resin", .uint(UInt64(r / 16))),
                    s("colour", .double(Double(r / 32) * 0.125)),
                    s("lot", .string("L-\(r / 5000)")), s("melt", .double(hot ? 265 : 245 + Double(r % 7))),
                    s("pressure", .double(800 + Double(r % 50))), s("gate", .bool(r % 3000 == 0)),
                    s("order", .string("WO-\(r / 5000)")),
                ]
            }
        }
    }

    static func run() throws -> BenchResult {
        let shift = shift()
        var best = 0.0
        var events = 0
        for _ in 0..<3 {
            var engine = RuleEngine(rules: rules())
            events = 0
            let elapsed = seconds { for reading in shift { events += engine.apply(reading).count } }
            best = max(best, Double(shift.count) / elapsed)
        }
        let samplesPerReading = machines * 11
        return BenchResult(
            bench: "rules.eval", value: best, unit: "readings/s", baseline: nil, baselineValue: 0,
            extra: [
                ("samples_per_s", .double((best * Double(samplesPerReading)).rounded())),
                ("samples_per_reading", .int(Int64(samplesPerReading))), ("events", .int(Int64(events))),
            ])
    }
}
