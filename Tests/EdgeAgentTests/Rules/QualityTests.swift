import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct QualityTests {
    static let melt = MachineConfig.QualityCheck(
        name: "melt_temp", tag: "press-1.melt_temp",
        condition: .limits(low: 230, high: 260, hysteresis: 2),
        minDuration: .seconds(5), severity: .major)
    static let gate = MachineConfig.QualityCheck(
        name: "reject_gate", tag: "press-1.qa_fail", condition: .flag,
        severity: .critical, reasonTag: "press-1.qa_code")

    func checking(_ checks: [MachineConfig.QualityCheck] = [melt, gate]) -> RuleEngine {
        RuleEngine(
            rules: RuleSet(machines: [RuleSet.Machine(name: "press-1", workOrderTag: "press-1.order", quality: checks)])
        )
    }

    /// Temperatures at one reading per second from `start`.
    func temperatures(_ values: [Double], from start: Double = 0) -> [Sample] {
        values.enumerated().map { at(start + Double($0.offset), "press-1.melt_temp", .double($0.element)) }
    }

    @Test func anExcursionShorterThanMinDurationRaisesNothing() {
        var engine = checking()
        #expect(
            engine.apply(temperatures([250, 262, 265, 263, 261, 259, 250])).isEmpty,
            "4 s outside, back inside the limits")
        #expect(engine.state.machines["press-1"]?.checks.isEmpty == true)
    }

    @Test func aLongerOneIsRaisedFromItsStartAndClearedWithItsExtreme() {
        var engine = checking()
        var events = engine.apply(
            [at(0, "press-1.order", .string("WO-7"))]
                + temperatures([250, 262, 268, 271, 266, 262, 261, 259, 257, 249]))
        events = events.filter { $0.type != .workOrderStarted }
        #expect(events.map(\.type) == [.qualityRaised, .qualityCleared])
        let raised = events[0], cleared = events[1]
        #expect(raised.time == time(1), "the time is when it left the band, not when min_duration ran out (6 s)")
        #expect(raised.data["exception_id"] == .string("press-1-melt_temp-\(time(1).milliseconds)"))
        #expect(
            raised.data["severity"] == "major" && raised.data["low"] == .double(230)
                && raised.data["high"] == .double(260))
        #expect(raised.data["value"] == .double(262) && raised.data["work_order"] == "WO-7")
        #expect(cleared.time == time(8), "259 is inside but not by 2; 257 is")
        #expect(cleared.data["started_at"] == .string(time(1).rfc3339) && cleared.data["duration_ms"] == .int(7000))
        #expect(
            cleared.data["extreme_value"] == .double(271) && cleared.data["exception_id"] == raised.data["exception_id"]
        )
    }

    @Test func chatteringAroundTheLimitWithinTheHysteresisIsOneException() {
        var engine = checking()
        let chatter: [Double] = [265, 265, 265, 265, 265, 265] + (0..<20).map { $0 % 2 == 0 ? 259 : 261 } + [240]
        let events = engine.apply(temperatures(chatter))
        #expect(events.map(\.type) == [.qualityRaised, .qualityCleared])
        #expect(events[1].data["extreme_value"] == .double(265))
    }

    @Test func aLowExcursionTracksTheLowestValueAndRaisesOnTimeWithoutNewSamples() {
        var engine = checking()
        _ = engine.apply(temperatures([240, 228, 221, 225]))
        #expect(engine.advance(to: time(5.9)).isEmpty)
        let raised = engine.advance(to: time(6))
        #expect(raised.map(\.type) == [.qualityRaised] && raised[0].time == time(1))
        #expect(engine.apply(temperatures([233], from: 10)).first?.data["extreme_value"] == .double(221))
    }

    @Test func aBoolCheckWithReasonCodesReadWhenRaisedAndWhenCleared() throws {
        var engine = checking()
        let raised = engine.apply([
            at(0, "press-1.qa_fail", .bool(false)), at(1, "press-1.qa_fail", .bool(true)), at(1, "press-1.qa_code", 41),
        ])
        #expect(raised.map(\.type) == [.qualityRaised])
        #expect(
            raised[0].data["reason_code"] == .int(41) && raised[0].data["severity"] == "critical"
                && raised[0].data["value"] == .bool(true))
        #expect(raised[0].data["low"] == .null && raised[0].data["work_order"] == .null)
        var after = try restarted(engine)
        #expect(after.apply([at(2, "press-1.qa_fail", .bool(true))]).isEmpty, "open across a restart: not raised again")
        let cleared = after.apply([at(3, "press-1.qa_code", 44), at(4, "press-1.qa_fail", .bool(false))])
        #expect(cleared.map(\.type) == [.qualityCleared])
        #expect(cleared[0].data["reason_code"] == .int(44) && cleared[0].data["duration_ms"] == .int(3000))
        #expect(cleared[0].data["extreme_value"] == .null)
        #expect(after.apply([at(5, "press-1.qa_fail", .bool(false))]).isEmpty, "cleared once")
    }

    @Test func badQualityNeitherRaisesNorClears() {
        var engine = checking()
        _ = engine.apply(temperatures([250, 270, 270, 270, 270, 270, 270]))
        #expect(
            engine.apply([at(7, "press-1.melt_temp", .double(240), .bad), at(8, "press-1.melt_temp", nil)]).isEmpty)
        #expect(engine.apply([at(9, "press-1.melt_temp", .double(300), .bad)]).isEmpty)
        #expect(engine.apply(temperatures([240], from: 10)).map(\.type) == [.qualityCleared])
        #expect(engine.apply([at(20, "press-1.melt_temp", .double(300), .bad)] + temperatures([250], from: 30)).isEmpty)
    }
}
