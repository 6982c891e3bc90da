import EdgeAgent
import EdgeAgentCore
import Testing

/// A press with state, good and scrap counters, a resin totalizer, a quality check and a work order.
func orderedPress(minInterval: Int64 = 0) -> RuleSet {
    RuleSet(machines: [
        RuleSet.Machine(
            name: "press-1",
            state: .init(
                source: .map(tag: "press-1.state", codes: pressStates), downtime: ["stopped", "fault"],
                reasonTag: "press-1.reason", minDowntime: .seconds(30)),
            counters: [
                RuleSet.Counter(tag: "press-1.good", unit: "pcs", range: 65536, minInterval: minInterval),
                RuleSet.Counter(
                    tag: "press-1.scrap", event: .productionScrapped, unit: "pcs", range: 65536,
                    minInterval: minInterval),
            ],
            workOrderTag: "press-1.order",
            materials: [
                RuleSet.Material(
                    tag: "press-1.resin", material: .fixed("PA66"), unit: "kg", range: 1_000_000, integral: true,
                    minInterval: minInterval),
                RuleSet.Material(
                    tag: "press-1.colour", material: .fixed("MB-BLACK"), unit: "kg", minInterval: minInterval),
            ],
            quality: [QualityTests.melt])
    ])
}

/// What a consumer adds up from the events it received, per order: good, scrap, materials.
struct OrderSums: Equatable {
    var good: Int64 = 0
    var scrap: Int64 = 0
    var materials: [String: Double] = [:]

    static func of(_ events: [Event]) -> [String: OrderSums] {
        var sums: [String: OrderSums] = [:]
        for event in events {
            guard case let .string(order)? = event.data["work_order"] else { continue }
            switch event.type {
            case .productionCompleted: sums[order, default: .init()].good += event.int("quantity")!
            case .productionScrapped: sums[order, default: .init()].scrap += event.int("quantity")!
            case .materialConsumed:
                sums[order, default: .init()].materials[event.string("material")!, default: 0] += event.number(
                    "quantity")!
            default: break
            }
        }
        return sums
    }

    /// The totals a `work_order.completed` reported.
    init(completed event: Event) {
        good = event.int("good")!
        scrap = event.int("scrap")!
        if case let .object(pairs)? = event.data["materials"] {
            for (name, total) in pairs { materials[name] = total["quantity"].flatMap(\.number) }
        }
    }

    init() {}
}

extension Event {
    func number(_ key: String) -> Double? { data[key]?.number }
}

extension JSONValue {
    var number: Double? {
        switch self {
        case let .int(v): Double(v)
        case let .double(v): v
        default: nil
        }
    }
}

@Suite struct WorkOrderTests {
    @Test func anOrderChangeCompletesThePreviousOrderWithTotalsEqualToItsEvents() throws {
        var engine = RuleEngine(rules: orderedPress())
        var events = engine.apply([
            at(0, "press-1.order", .string("WO-1")), at(0, "press-1.state", 1), at(0, "press-1.good", 100),
            at(0, "press-1.scrap", 7), at(0, "press-1.resin", 5000), at(0, "press-1.colour", .double(10)),
        ])
        #expect(events.map(\.type) == [.workOrderStarted, .stateChanged])
        #expect(events[0].data["previous_work_order"] == .null && events[0].data["work_order"] == "WO-1")
        events += engine.apply([
            at(10, "press-1.good", 140), at(10, "press-1.resin", 5040), at(10, "press-1.colour", .double(10.5)),
        ])
        events += engine.apply([at(20, "press-1.state", 0), at(20, "press-1.reason", 12), at(20, "press-1.scrap", 9)])
        events += engine.apply([at(80, "press-1.state", 1)])  // a 60 s downtime
        events += engine.apply([at(100, "press-1.state", 0)])  // open at the change, announced at 130 s
        events += engine.advance(to: time(131))
        events += engine.apply([
            at(140, "press-1.good", 150), at(140, "press-1.order", .string("WO-2")), at(140, "press-1.resin", 5050),
        ])
        let completed = try #require(events.first { $0.type == .workOrderCompleted })
        #expect(completed.time == time(140) && completed.data["started_at"] == .string(time(0).rfc3339))
        #expect(completed.data["duration_ms"] == .int(140_000) && completed.data["unit"] == "pcs")
        #expect(
            completed.data["good"] == .int(40) && completed.data["scrap"] == .int(2),
            "the parts of the changing reading go to WO-2")
        #expect(
            completed.data["materials"] == [
                "PA66": ["quantity": .int(40), "unit": "kg"], "MB-BLACK": ["quantity": .double(0.5), "unit": "kg"],
            ])
        #expect(
            completed.data["downtime_ms"] == .int(60_000 + 40_000),
            "a closed downtime and the open one up to the change")
        #expect(OrderSums(completed: completed) == OrderSums.of(events)["WO-1"])
        let started = events.last { $0.type == .workOrderStarted }!
        #expect(started.data["previous_work_order"] == "WO-1" && started.time == time(140))
        #expect(
            events.filter { $0.data["work_order"] == "WO-2" && $0.type == .productionCompleted }.compactMap {
                $0.int("quantity")
            } == [10])

        var after = try restarted(engine)
        events += after.apply([at(200, "press-1.state", 1)])  // the downtime ends in WO-2: 60 s of it
        events += after.apply([at(300, "press-1.order", .string(""))])
        let second = try #require(events.last { $0.type == .workOrderCompleted })
        #expect(second.data["work_order"] == "WO-2" && second.data["downtime_ms"] == .int(60_000))
        #expect(OrderSums(completed: second) == OrderSums.of(events)["WO-2"])
        #expect(events.last?.type == .workOrderCompleted, "an empty order completes the running one and starts none")
        #expect(after.apply([at(400, "press-1.good", 160)]).first?.data["work_order"] == .null)
    }

    @Test func anEmptyOrderAndMinIntervalSumsFlushedIntoTheOldOrder() throws {
        var engine = RuleEngine(rules: orderedPress(minInterval: 60_000))
        var events = engine.apply([
            at(0, "press-1.order", .string("WO-9")), at(0, "press-1.good", 0), at(0, "press-1.resin", 0),
        ])
        let empty = engine.apply([at(5, "press-1.order", .string("WO-10"))])
        #expect(empty.map(\.type) == [.workOrderCompleted, .workOrderStarted])
        #expect(
            empty[0].data["good"] == .int(0) && empty[0].data["materials"] == .object([])
                && empty[0].data["downtime_ms"] == .int(0))
        events += empty
        events += engine.apply([at(10, "press-1.good", 30), at(10, "press-1.resin", 12)])
        let change = engine.apply([at(20, "press-1.order", .string("WO-11")), at(20, "press-1.good", 35)])
        #expect(
            change.map(\.type) == [.productionCompleted, .materialConsumed, .workOrderCompleted, .workOrderStarted],
            "open min_interval sums are emitted for the old order first")
        #expect(change[0].data["work_order"] == "WO-10" && change[0].int("quantity") == 30)
        #expect(
            change[2].data["good"] == .int(30)
                && change[2].data["materials"] == ["PA66": ["quantity": 12, "unit": "kg"]])
        events += change
        #expect(OrderSums(completed: change[2]) == OrderSums.of(events)["WO-10"])
        #expect(engine.apply([at(21, "press-1.order", .string("WO-11"))]).isEmpty, "the same order again is no change")
    }

    @Test func aNumericOrderTagIsItsDecimalText() {
        var engine = RuleEngine(rules: orderedPress())
        #expect(engine.apply([at(0, "press-1.order", 4711)]).first?.data["work_order"] == "4711")
    }
}
