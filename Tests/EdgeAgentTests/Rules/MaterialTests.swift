import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct MaterialTests {
    func resin(
        range: Double? = 1_000_000, integral: Bool = true, minInterval: Int64 = 0,
        material: MachineConfig.MaterialRule.Material = .fixed("PA66-GF30")
    ) -> RuleEngine {
        RuleEngine(
            rules: RuleSet(machines: [
                RuleSet.Machine(
                    name: "press-1",
                    materials: [
                        RuleSet.Material(
                            tag: "press-1.resin_kg", material: material, lotTag: "press-1.resin_lot", unit: "kg",
                            range: range, integral: integral, minInterval: minInterval)
                    ])
            ]))
    }

    func consumed(_ events: [Event]) -> [JSONValue?] {
        events.filter { $0.type == .materialConsumed }.map { $0.data["quantity"] }
    }

    @Test func anIntegerTotalizerThroughARolloverAndAReset() throws {
        var engine = resin()
        #expect(
            engine.apply([at(0, "press-1.resin_kg", 999_990), at(0, "press-1.resin_lot", .string("L-17"))]).isEmpty,
            "the first reading is a baseline")
        let wrapped = engine.apply([at(1, "press-1.resin_kg", 4)])
        #expect(consumed(wrapped) == [.int(14)], "999,990 -> 4 at 1,000,000 is 14 kg")
        #expect(
            wrapped[0].data["material"] == "PA66-GF30" && wrapped[0].data["lot"] == "L-17"
                && wrapped[0].data["unit"] == "kg")
        #expect(wrapped[0].data["counter"] == ["tag": "press-1.resin_kg", "from": 999_990, "to": 4])
        #expect(wrapped[0].data["work_order"] == .null)
        _ = engine.apply([at(2, "press-1.resin_kg", 400_000)])
        #expect(
            consumed(engine.apply([at(3, "press-1.resin_kg", 25)])) == [.int(25)],
            "a drop past half the range is a reset")
        var after = try restarted(engine)
        #expect(
            consumed(after.apply([at(4000, "press-1.resin_kg", 90)])) == [.int(65)],
            "used while stopped counts after a restart")
    }

    @Test func aFloatTotalizerWithoutRolloverResetsOnADecrease() {
        var engine = resin(range: nil, integral: false)
        _ = engine.apply([at(0, "press-1.resin_kg", .double(120.25))])
        #expect(consumed(engine.apply([at(1, "press-1.resin_kg", .double(121.0))])) == [.double(0.75)])
        #expect(
            consumed(engine.apply([at(2, "press-1.resin_kg", .double(0.5))])) == [.double(0.5)],
            "reset: counts from zero")
        #expect(engine.apply([at(3, "press-1.resin_kg", .double(0.5))]).isEmpty, "no increase, no event")
    }

    @Test func minIntervalSumsAndTheMaterialCanComeFromATag() {
        var engine = resin(minInterval: 10_000, material: .tag("press-1.item"))
        var events = engine.apply([at(0, "press-1.resin_kg", 100), at(0, "press-1.item", .string("PP-H 450"))])
        for t in 1...12 { events += engine.apply([at(Double(t), "press-1.resin_kg", Int64(100 + 3 * t))]) }
        #expect(consumed(events) == [.int(33)], "1 s to 11 s: eleven increments of 3, emitted at 11 s")
        #expect(events[0].time == time(11) && events[0].data["material"] == "PP-H 450")
        #expect(
            consumed(engine.advance(to: time(21))).isEmpty && consumed(engine.advance(to: time(22))) == [.int(3)],
            "12 s opened a window")
    }

    @Test func badQualityNeitherCountsNorMovesTheBaseline() {
        var engine = resin()
        _ = engine.apply([at(0, "press-1.resin_kg", 10)])
        #expect(engine.apply([at(1, "press-1.resin_kg", .int(900), .bad)]).isEmpty)
        #expect(consumed(engine.apply([at(2, "press-1.resin_kg", 12)])) == [.int(2)])
    }
}
