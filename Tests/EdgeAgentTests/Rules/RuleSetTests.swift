import Testing

@testable import EdgeAgentCore

/// `RuleSet.reads`: the tags a device poller hands to the pipeline; any other tag's samples are
/// left out there, so leaving them out must change nothing.
@Suite struct RuleSetTests {
    /// Every way a rule names a tag: a mapped and a bit-wise state with its reason, counters with
    /// their own order tag, the machine's order, materials with a material and a lot tag, quality
    /// checks with a reason, and published tags.
    static let rules = RuleSet(
        machines: [
            RuleSet.Machine(
                name: "press", state: .init(source: .map(tag: "p.state", codes: pressStates), reasonTag: "p.reason"),
                counters: [
                    RuleSet.Counter(tag: "p.good", unit: "pcs", range: 65536, workOrderTag: "p.job", minInterval: 0)
                ],
                workOrderTag: "p.order",
                materials: [
                    RuleSet.Material(
                        tag: "p.resin", material: .tag("p.resin_code"), lotTag: "p.lot", unit: "kg", integral: true,
                        minInterval: 0)
                ],
                quality: [
                    MachineConfig.QualityCheck(
                        name: "gate", tag: "p.qa_fail", condition: .flag, severity: .critical, reasonTag: "p.qa_code")
                ]),
            RuleSet.Machine(
                name: "saw", state: .init(source: .bits([("s.fault", "fault"), ("s.run", "running")], default: "idle"))),
        ],
        published: ["p.temp": 0.5])

    @Test func readsEveryTagARuleNames() {
        #expect(
            Self.rules.reads == [
                "p.state", "p.reason", "p.good", "p.job", "p.order", "p.resin", "p.resin_code", "p.lot", "p.qa_fail",
                "p.qa_code", "s.fault", "s.run", "p.temp",
            ])
    }

    /// `RuleSet.inputs`: every tag a machine's rules read has a slot, in the order the machines
    /// name them; context tags have none; a tag two machines read has one.
    @Test func eachTagAMachineReadsHasOneSlot() {
        #expect(
            Self.rules.inputs == [
                .init(state: [0], counters: [1], materials: [2], quality: [3], workOrder: 4), .init(state: [5, 6]),
            ])
        #expect(Self.rules.slots == 7)
        #expect(Self.rules.roles["p.qa_fail"]?.slot == 3)
        #expect(Self.rules.roles["p.reason"]?.slot == nil)
        #expect(Self.rules.roles["p.temp"]?.slot == nil)
        let shared = RuleSet(machines: [
            RuleSet.Machine(name: "a", counters: [RuleSet.Counter(tag: "line.count")], workOrderTag: "line.order"),
            RuleSet.Machine(name: "b", counters: [RuleSet.Counter(tag: "line.count")], workOrderTag: "line.order"),
        ])
        #expect(shared.inputs == [.init(counters: [0], workOrder: 1), .init(counters: [0], workOrder: 1)])
        #expect(shared.slots == 2)
    }

    /// A counter and a work-order tag two machines read share one slot: each reading's sample
    /// reaches both machines, and of two samples of the tag in one reading the last good one
    /// counts, in a chunk as one reading at a time.
    @Test func aTagTwoMachinesReadCountsForBothAndItsLastGoodSampleWins() {
        let rules = RuleSet(machines: [
            RuleSet.Machine(name: "a", counters: [RuleSet.Counter(tag: "line.count")], workOrderTag: "line.order"),
            RuleSet.Machine(name: "b", counters: [RuleSet.Counter(tag: "line.count")], workOrderTag: "line.order"),
        ])
        let readings = [
            [at(0, "line.count", 10), at(0, "line.order", .string("WO-1"))],
            [at(1, "line.count", 12), at(1, "line.count", .int(99), .bad)],
            [at(2, "line.count", 50), at(2, "line.count", 15)],
        ]
        var chunk = RuleEngine(rules: rules), oneByOne = RuleEngine(rules: rules)
        let events = chunk.apply(readings.flatMap { $0 })
        let produced = events.filter { $0.type == .productionCompleted }.map {
            "\($0.subject) \($0.int("quantity") ?? -1) \($0.string("work_order") ?? "-")"
        }
        #expect(produced == ["a 2 WO-1", "b 2 WO-1", "a 3 WO-1", "b 3 WO-1"])
        #expect(readings.flatMap { oneByOne.apply($0) } == events)
    }

    /// A random line of 2,000 readings of every tag and of five tags no rule names: the rules
    /// fed only the samples of `reads` give the same events as the rules fed everything.
    @Test func samplesOfOtherTagsChangeNothing() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = FastRandom(seed: seed)
        let numeric = ["p.state", "p.reason", "p.qa_fail", "p.qa_code", "s.fault", "s.run", "p.temp"]
        let noise = (0..<5).map { "plc.unused\($0)" }
        var (good, resin) = (UInt64(0), UInt64(0))
        var all: [Sample] = []
        for t in 0..<2000 {
            let time = Timestamp(milliseconds: 1_700_000_000_000 + Int64(t) * 1000)
            good = (good + UInt64.random(in: 0...2, using: &random)) % 65536
            resin += UInt64.random(in: 0...3, using: &random)
            for tag in numeric + noise {
                all.append(Sample(tag: tag, value: .int(Int64.random(in: 0...3, using: &random)), time: time))
            }
            let order = "WO-\(t / 300)", lot = "L\(t / 500)"
            all += [
                Sample(tag: "p.good", value: .uint(good), time: time),
                Sample(tag: "p.resin", value: .uint(resin), time: time),
                Sample(tag: "p.order", value: .string(order), time: time),
                Sample(tag: "p.job", value: .string(order), time: time),
                Sample(tag: "p.resin_code", value: .string("PA66"), time: time),
                Sample(tag: "p.lot", value: .string(lot), time: time),
            ]
        }
        let kept = all.filter { Self.rules.reads.contains($0.tag) }
        var everything = RuleEngine(rules: Self.rules), only = RuleEngine(rules: Self.rules)
        let events = everything.apply(all)
        #expect(kept.count == all.count - 5 * 2000)
        #expect(events.count > 100, "seed \(seed)")
        #expect(only.apply(kept) == events, "seed \(seed)")
        let later = Timestamp(milliseconds: 1_700_000_000_000 + 3_000_000)
        #expect(only.advance(to: later) == everything.advance(to: later), "seed \(seed)")
    }

    /// A chunk of readings (a historian file's rows) is applied with the previous reading's tags
    /// remembered by place: readings that name their tags in another order, leave some out or add
    /// others give the events and the state of the same readings applied one at a time.
    @Test func aChunkWhoseReadingsReorderTheirTagsGivesTheEventsOfItsReadingsOneByOne() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = FastRandom(seed: seed)
        let numeric = ["p.state", "p.reason", "p.qa_fail", "p.qa_code", "s.fault", "s.run", "p.temp", "plc.unused"]
        var (good, resin) = (UInt64(0), UInt64(0))
        var readings: [[Sample]] = []
        for t in 0..<2000 {
            let time = Timestamp(milliseconds: 1_700_000_000_000 + Int64(t) * 1000)
            good = (good + UInt64.random(in: 0...2, using: &random)) % 65536
            resin += UInt64.random(in: 0...3, using: &random)
            var reading = numeric.map {
                Sample(tag: $0, value: .int(Int64.random(in: 0...3, using: &random)), time: time)
            }
            reading += [
                Sample(tag: "p.good", value: .uint(good), time: time),
                Sample(tag: "p.resin", value: .uint(resin), time: time),
                Sample(tag: "p.order", value: .string("WO-\(t / 300)"), time: time),
                Sample(tag: "p.resin_code", value: .string("PA66"), time: time),
            ]
            // Most rows keep the order of the one before; some shuffle it or drop a tag.
            if Int.random(in: 0..<4, using: &random) == 0 { reading.shuffle(using: &random) }
            if Int.random(in: 0..<4, using: &random) == 0 {
                reading.remove(at: Int.random(in: 0..<reading.count, using: &random))
            }
            readings.append(reading)
        }
        var chunk = RuleEngine(rules: Self.rules), oneByOne = RuleEngine(rules: Self.rules)
        let events = chunk.apply(readings.flatMap { $0 })
        #expect(events.count > 100, "seed \(seed)")
        #expect(readings.flatMap { oneByOne.apply($0) } == events, "seed \(seed)")
        #expect(chunk.state == oneByOne.state, "seed \(seed)")
    }
}
