import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct CounterTests {
    func counting(range: UInt64? = 65536, minInterval: Int64 = 0) -> RuleEngine {
        RuleEngine(
            rules: RuleSet(machines: [
                RuleSet.Machine(
                    name: "press-1",
                    counters: [
                        RuleSet.Counter(
                            tag: "press-1.count", range: range, workOrderTag: "press-1.order", minInterval: minInterval)
                    ])
            ]))
    }

    func quantities(_ events: [Event]) -> [Int64] { events.compactMap { $0.int("quantity") } }

    @Test func theFirstReadingIsOnlyABaseline() {
        var engine = counting()
        #expect(engine.apply([at(0, "press-1.count", 1000)]).isEmpty)
        let next = engine.apply([at(1, "press-1.count", 1003)])
        #expect(quantities(next) == [3])
        #expect(next[0].type == .productionCompleted && next[0].string("unit") == "pcs")
        #expect(next[0].data["counter"] == ["tag": "press-1.count", "from": 1000, "to": 1003])
    }

    @Test func aRolloverCountsTheWrappedIncrease() {
        var engine = counting()
        _ = engine.apply([at(0, "press-1.count", 65530)])
        #expect(quantities(engine.apply([at(1, "press-1.count", 5)])) == [11])
    }

    @Test func aDropThatIsNotARolloverIsAResetCountedFromZero() {
        var engine = counting()
        _ = engine.apply([at(0, "press-1.count", 30)])
        #expect(quantities(engine.apply([at(1, "press-1.count", 2)])) == [2])
    }

    @Test func increaseFollowsTheHalfRangeRule() {
        #expect(RuleEngine.increase(from: 65530, to: 5, range: 65536) == 11)
        #expect(RuleEngine.increase(from: 30, to: 2, range: 65536) == 2)
        #expect(RuleEngine.increase(from: 40000, to: 100, range: 65536) == 25636, "wrapped 25636 < 32768: a rollover")
        #expect(RuleEngine.increase(from: 30000, to: 100, range: 65536) == 100, "wrapped 35636 >= 32768: a reset")
        #expect(RuleEngine.increase(from: UInt64.max - 1, to: 3, range: nil) == 5)
        #expect(RuleEngine.increase(from: 7, to: 7, range: 65536) == 0)
    }

    @Test func aSignedRegisterThatWrapsNegativeIsARollover() {
        var engine = counting(range: 65536)
        _ = engine.apply([at(0, "press-1.count", 32766)])
        #expect(quantities(engine.apply([at(1, "press-1.count", -32767)])) == [3])
    }

    @Test func minIntervalSumsIncrementsOnSampleTime() {
        var engine = counting(minInterval: 5000)
        var events = engine.apply([at(0, "press-1.count", 100)])
        for t in 1...14 { events += engine.apply([at(Double(t), "press-1.count", Int64(100 + t * 2))]) }
        // A window opens with its first increment (1 s) and closes min_interval later (6 s): six increments of 2.
        #expect(quantities(events) == [12, 12])
        #expect(events.map(\.time) == [time(6), time(12)], "the time of the last increment included")
        #expect(events[0].data["counter"] == ["tag": "press-1.count", "from": 100, "to": 112])
        #expect(
            engine.state.machines["press-1"]?.counters["press-1.count"]?.pending?.quantity == 4, "13 s and 14 s wait")
        #expect(engine.advance(to: time(17.9)).isEmpty)
        let flushed = engine.advance(to: time(18))
        #expect(quantities(flushed) == [4] && flushed[0].time == time(14))
    }

    @Test func theWorkOrderIsReadAtEmission() {
        var engine = counting()
        _ = engine.apply([at(0, "press-1.count", 0), at(0, "press-1.order", .string("WO-1"))])
        let a = engine.apply([at(1, "press-1.count", 5), at(1, "press-1.order", .string("WO-2"))])
        #expect(a[0].string("work_order") == "WO-2", "a work order read in the same cycle applies")
        #expect(
            engine.apply([at(2, "press-1.count", 6), at(2, "press-1.order", .string("WO-3"), .bad)])[0].string(
                "work_order") == "WO-2")
    }

    @Test func badQualityReadingsAreIgnored() {
        var engine = counting()
        _ = engine.apply([at(0, "press-1.count", 10)])
        #expect(engine.apply([at(1, "press-1.count", .int(0), .bad), at(2, "press-1.count", nil)]).isEmpty)
        #expect(quantities(engine.apply([at(3, "press-1.count", 15)])) == [5], "counted from the last good reading")
    }

    @Test func partsMadeWhileStoppedAreCountedAfterARestart() throws {
        var engine = counting()
        _ = engine.apply([at(0, "press-1.count", 10), at(1, "press-1.count", 20)])
        var after = try restarted(engine)
        #expect(quantities(after.apply([at(3600, "press-1.count", 95)])) == [75])
    }

    @Test func samplesWithEqualTimestampsAreOneReading() {
        var engine = counting()
        _ = engine.apply([at(0, "press-1.count", 10)])
        let events = engine.apply([at(1, "press-1.count", 11), at(1, "press-1.count", 14)])
        #expect(quantities(events) == [4], "the last value of a reading counts")
    }
}

/// For any sequence of counter readings, crashing at any point and going on from the persisted
/// state gives quantities that add up to the true increase.
@Suite struct CounterPropertyTests {
    @Test func quantitiesSumToTheTrueIncreaseWhereverTheCrashFalls() throws {
        var random = FastRandom()
        for _ in 0..<300 {
            let range: UInt64 = [65536, 1 << 32, 1000][Int.random(in: 0...2, using: &random)]
            let count = Int.random(in: 2...60, using: &random)
            var position = UInt64.random(in: 0..<range, using: &random)
            var readings = [position]
            var trueIncrease: UInt64 = 0
            for _ in 1..<count {
                let step =
                    Bool.random(using: &random) ? 0 : UInt64.random(in: 0..<(range / 2 - 1), using: &random) % 5000
                trueIncrease += step
                position = (position + step) % range
                readings.append(position)
            }
            let samples = readings.enumerated().map { at(Double($0.offset), "c", .uint($0.element)) }
            let rules = RuleSet(machines: [
                RuleSet.Machine(name: "m", counters: [RuleSet.Counter(tag: "c", range: range)])
            ])
            let crash = Int.random(in: 0...count, using: &random)
            var before = RuleEngine(rules: rules)
            var events = before.apply(Array(samples[..<crash]))
            var after = try restarted(before)
            events += after.apply(Array(samples[crash...]))
            let total = events.compactMap { $0.int("quantity") }.reduce(0, +)
            #expect(UInt64(total) == trueIncrease, "range \(range), readings \(readings), crash after \(crash)")
        }
    }
}

/// A random shift through every rule (state and downtime, good and scrap, an integer and a float
/// totalizer, a limit check, work orders, bad samples), crashed at random points and resumed from
/// the persisted state each time: the events are exactly those of the uninterrupted run, the
/// quantities add up to the true increases, and every order's totals are the sums of its events.
@Suite struct ShiftPropertyTests {
    @Test func everyRuleResumesExactlyWhereverTheCrashesFall() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = FastRandom(seed: seed)
        var checkedOrders = 0
        for round in 0..<60 {
            var samples: [Sample] = []
            var (state, good, scrap, resin, colour, melt) = (
                Int64(1), UInt64(65000), UInt64(0), UInt64(999_990), 10.0, 245.0
            )
            var (trueGood, trueResin, trueColour) = (UInt64(0), UInt64(0), 0.0)
            var order = 0
            for t in 0..<400 {
                let s = Double(t)
                if Int.random(in: 0..<25, using: &random) == 0 { state = Int64.random(in: 0...4, using: &random) }
                // A reset, seen as a decrease.
                if colour > 1, Int.random(in: 0..<150, using: &random) == 0 { colour = 0 }
                if state == 1, t > 0 {
                    let made = UInt64.random(in: 0...3, using: &random), used = UInt64.random(in: 0...4, using: &random)
                    let dosed = Double(Int.random(in: 0...8, using: &random)) / 8
                    (good, resin, colour) = ((good + made) % 65536, (resin + used) % 1_000_000, colour + dosed)
                    (trueGood, trueResin, trueColour) = (trueGood + made, trueResin + used, trueColour + dosed)
                    if Bool.random(using: &random) { scrap = (scrap + 1) % 65536 }
                }
                melt = min(280, max(210, melt + Double(Int.random(in: -3...3, using: &random))))
                if Int.random(in: 0..<60, using: &random) == 0 { order += 1 }
                let bad = t > 0 && t < 399 && Int.random(in: 0..<20, using: &random) == 0
                samples += [
                    at(s, "press-1.state", state), at(s, "press-1.reason", Int64(t % 7)),
                    at(s, "press-1.good", .uint(good), bad ? .bad : .good), at(s, "press-1.scrap", .uint(scrap)),
                    at(s, "press-1.resin", .uint(resin)), at(s, "press-1.colour", .double(colour)),
                    at(s, "press-1.melt_temp", .double(melt)),
                    at(s, "press-1.order", .string(order % 5 == 4 ? "" : "WO-\(order)")),
                ]
            }
            let rules = RuleSet(
                machines: orderedPress(minInterval: round % 2 == 0 ? 0 : 5000).machines,
                published: ["press-1.melt_temp": 2, "press-1.order": 0])
            var whole = RuleEngine(rules: rules)
            let expected = whole.apply(samples)

            // A crash falls between commits, and a reading is committed whole: between seconds.
            var crashes = (0..<Int.random(in: 1...3, using: &random)).map { _ in
                8 * Int.random(in: 0...400, using: &random)
            }.sorted()
            crashes.append(samples.count)
            // Each reading (a second: 8 samples) stores only the state entries it changed, as the
            // pipeline commits them; a crash resumes from those rows.
            var engine = RuleEngine(rules: rules)
            var table = StateTable()
            var events: [Event] = []
            var from = 0
            for crash in crashes {
                for start in stride(from: from, to: crash, by: 8) {
                    let before = engine.state
                    let reading = Array(samples[start..<start + 8])
                    events += engine.apply(reading)
                    table.store(engine.state.changed(from: before, reading: reading), of: engine.state)
                }
                #expect(try table.load() == engine.state, "seed \(seed) round \(round): the rows hold the whole state")
                engine = RuleEngine(rules: rules, state: try table.load())
                from = crash
            }
            let differ =
                zip(events, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(events.count, expected.count)
            #expect(
                events == expected,
                "seed \(seed) round \(round): crashes at \(crashes.dropLast()), event \(differ) of \(expected.count): \(events.dropFirst(differ).first.map { "\($0)" } ?? "none") instead of \(expected.dropFirst(differ).first.map { "\($0)" } ?? "none")"
            )

            func sum(_ type: EventType) -> Double {
                events.filter { $0.type == type }.compactMap { $0.number("quantity") }.reduce(0, +)
            }
            let pending = engine.state.machines["press-1"]!
            let goodPending = Double(pending.counters["press-1.good"]?.pending?.quantity ?? 0)
            #expect(sum(.productionCompleted) + goodPending == Double(trueGood), "seed \(seed) round \(round)")
            let resinEvents = events.filter { $0.type == .materialConsumed && $0.data["material"] == "PA66" }
            let colourEvents = events.filter { $0.type == .materialConsumed && $0.data["material"] == "MB-BLACK" }
            #expect(
                resinEvents.compactMap { $0.number("quantity") }.reduce(0, +)
                    + (pending.materials["press-1.resin"]?.pending?.quantity ?? 0)
                    == Double(trueResin), "seed \(seed) round \(round)")
            #expect(
                abs(
                    colourEvents.compactMap { $0.number("quantity") }.reduce(0, +)
                        + (pending.materials["press-1.colour"]?.pending?.quantity ?? 0)
                        - trueColour) < 1e-9, "seed \(seed) round \(round)")
            let sums = OrderSums.of(events)
            for completed in events where completed.type == .workOrderCompleted {
                #expect(
                    OrderSums(completed: completed) == sums[completed.string("work_order")!] ?? OrderSums(),
                    "seed \(seed) round \(round)")
                checkedOrders += 1
            }
            var open: [String: String] = [:]
            for event in events where event.type == .qualityRaised || event.type == .qualityCleared {
                let id = event.string("exception_id")!
                if event.type == .qualityRaised {
                    #expect(open.updateValue(id, forKey: "melt") == nil, "one open at a time")
                } else {
                    #expect(open.removeValue(forKey: "melt") == id, "cleared once, the one raised")
                }
            }
        }
        #expect(checkedOrders > 200, "the shifts complete orders: \(checkedOrders)")
    }
}
