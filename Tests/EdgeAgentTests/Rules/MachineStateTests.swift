import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct MachineStateTests {
    @Test func mapsCodesToStatesWithThePreviousDuration() {
        var engine = RuleEngine(rules: RuleSet(machines: [press()]))
        let first = engine.apply([at(0, "press-1.state", 1)])
        #expect(first.count == 1)
        #expect(first[0].type == .stateChanged && first[0].string("state") == "running" && first[0].int("code") == 1)
        #expect(
            first[0].isNull("previous_state") && first[0].isNull("previous_duration_ms"),
            "the very first reading has no previous")
        #expect(
            engine.apply([at(1, "press-1.state", 1), at(2, "press-1.state", 1)]).isEmpty,
            "an unchanged state is no event")
        let idle = engine.apply([at(12.5, "press-1.state", 2)])
        #expect(idle.map(\.type) == [.stateChanged])
        #expect(idle[0].string("previous_state") == "running" && idle[0].int("previous_duration_ms") == 12_500)
        #expect(idle[0].time == time(12.5))
        #expect(
            engine.apply([at(13, "press-1.state", 9)])[0].string("state") == "unknown",
            "an unmapped code is reported, not hidden")
    }

    @Test func derivesStatesFromBitsByPriority() {
        let machine = RuleSet.Machine(
            name: "m", state: .init(source: .bits([("m.fault", "fault"), ("m.run", "running")], default: "idle")))
        var engine = RuleEngine(rules: RuleSet(machines: [machine]))
        let e1 = engine.apply([at(0, "m.fault", .bool(false)), at(0, "m.run", .bool(true))])
        #expect(e1.map { $0.string("state") } == ["running"] && e1[0].isNull("code"))
        #expect(
            engine.apply([at(1, "m.fault", .bool(true))]).map { $0.string("state") } == ["fault"],
            "fault outranks running")
        #expect(
            engine.apply([at(2, "m.fault", .bool(false)), at(2, "m.run", .bool(false))]).map { $0.string("state") } == [
                "idle"
            ])
    }

    @Test func aMicroStopLeavesNoDowntime() {
        var engine = RuleEngine(rules: RuleSet(machines: [press(minDowntime: .seconds(30))]))
        var events = engine.apply([at(0, "press-1.state", 1)])
        for t in stride(from: 1.0, through: 20, by: 1) {
            events += engine.apply([at(t, "press-1.state", t < 11 ? 0 : 1)])
        }
        events += engine.advance(to: time(100))
        #expect(events.map(\.type) == [.stateChanged, .stateChanged, .stateChanged], "run, stop, run; no downtime")
        #expect(engine.state.machines["press-1"]?.downtime == nil)
    }

    @Test func aMicroStopSeenOnlyAtItsEdgesIsStillAMicroStop() {
        var engine = RuleEngine(rules: RuleSet(machines: [press(minDowntime: .seconds(30))]))
        let events = engine.apply([at(0, "press-1.state", 1), at(5, "press-1.state", 0), at(34, "press-1.state", 1)])
        #expect(!events.contains { $0.type == .downtimeStarted }, "29 s < min_downtime")
    }

    @Test func aDowntimeIsAnnouncedOnceItHasLastedMinDowntimeWithItsTrueStart() {
        var engine = RuleEngine(rules: RuleSet(machines: [press(minDowntime: .seconds(30))]))
        _ = engine.apply([at(0, "press-1.state", 1), at(0, "press-1.reason", 0)])
        let stop = engine.apply([at(10, "press-1.state", 3), at(10, "press-1.reason", 17)])
        #expect(stop.map(\.type) == [.stateChanged], "not yet a downtime")
        #expect(engine.apply([at(39.9, "press-1.state", 3)]).isEmpty)
        let announced = engine.apply([at(40, "press-1.state", 3)])
        #expect(announced.map(\.type) == [.downtimeStarted], "announced while still down")
        #expect(announced[0].time == time(10), "time is the true start")
        #expect(
            announced[0].string("state") == "fault" && announced[0].int("reason_code") == 17,
            "the reason read in the same cycle as the stop")
        let id = announced[0].string("downtime_id")
        let end = engine.apply([at(70, "press-1.reason", 23), at(70, "press-1.state", 1)])
        #expect(end.map(\.type) == [.stateChanged, .downtimeEnded])
        let ended = end[1]
        #expect(
            ended.string("downtime_id") == id && ended.int("duration_ms") == 60_000 && ended.int("reason_code") == 23)
        #expect(ended.string("started_at") == time(10).rfc3339 && ended.string("ended_at") == time(70).rfc3339)
    }

    @Test func aReadingOfAnotherMachinesTagsLetsTimePassOnThisOne() {
        let other = RuleSet.Machine(name: "saw", state: .init(source: .map(tag: "saw.state", codes: pressStates)))
        var engine = RuleEngine(rules: RuleSet(machines: [press(minDowntime: .seconds(30)), other]))
        _ = engine.apply([at(0, "press-1.state", 1), at(0, "saw.state", 1)])
        #expect(engine.apply([at(10, "press-1.state", 0)]).map(\.type) == [.stateChanged])
        let later = engine.apply([at(40, "saw.state", 2)])
        #expect(
            later.map(\.type) == [.downtimeStarted, .stateChanged],
            "the press's downtime is announced at the saw's reading, before the saw's own change")
        #expect(later[0].time == time(10) && later[1].string("state") == "idle" && later[1].subject == "saw")
        #expect(engine.state.machines["press-1"]?.state == "stopped", "the saw's reading leaves the press's state")
    }

    @Test func consecutiveDowntimeStatesAreOneDowntime() {
        var engine = RuleEngine(rules: RuleSet(machines: [press(minDowntime: .zero)]))
        var events = engine.apply([at(0, "press-1.state", 1)])
        events += engine.apply([at(10, "press-1.state", 0)])
        events += engine.apply([at(20, "press-1.state", 3)])
        events += engine.apply([at(50, "press-1.state", 1)])
        let downtime = events.filter { $0.type == .downtimeStarted || $0.type == .downtimeEnded }
        #expect(downtime.map(\.type) == [.downtimeStarted, .downtimeEnded])
        #expect(downtime[0].string("state") == "stopped" && downtime[1].string("state") == "fault")
        #expect(downtime[1].int("duration_ms") == 40_000)
    }

    @Test func anOpenDowntimeSurvivesARestartAndClosesCorrectly() throws {
        var engine = RuleEngine(rules: RuleSet(machines: [press(minDowntime: .seconds(30))]))
        _ = engine.apply([at(0, "press-1.state", 1), at(10, "press-1.state", 0)])
        var after = try restarted(engine)
        #expect(
            after.apply([at(45, "press-1.state", 0)]).map(\.type) == [.downtimeStarted], "no state change re-emitted")
        after = try restarted(after)
        let end = after.apply([at(100, "press-1.state", 1)])
        #expect(end.map(\.type) == [.stateChanged, .downtimeEnded])
        #expect(end[1].int("duration_ms") == 90_000 && end[0].int("previous_duration_ms") == 90_000)
    }

    @Test func anUnchangedStateAfterARestartEmitsNothing() throws {
        var engine = RuleEngine(rules: RuleSet(machines: [press()]))
        _ = engine.apply([at(0, "press-1.state", 1)])
        var after = try restarted(engine)
        #expect(after.apply([at(600, "press-1.state", 1)]).isEmpty)
    }

    @Test func badQualityNeverMovesAState() {
        var engine = RuleEngine(rules: RuleSet(machines: [press()]))
        _ = engine.apply([at(0, "press-1.state", 1)])
        #expect(engine.apply([at(1, "press-1.state", .int(0), .bad), at(2, "press-1.state", nil)]).isEmpty)
        #expect(engine.state.machines["press-1"]?.state == "running")
    }

    /// Wall-clock ticks move only the machines a device feeds; a file-fed machine's stop is
    /// judged on the times in its files.
    @Test func wallClockTicksLeaveAFileFedMachineAlone() {
        var fileFed = press(minDowntime: .seconds(30))
        fileFed.wallClock = false
        var engine = RuleEngine(rules: RuleSet(machines: [fileFed]))
        _ = engine.apply([at(0, "press-1.state", 1), at(60, "press-1.state", 0)])
        #expect(engine.advance(to: time(3600)).isEmpty, "an hour of wall clock announces nothing")
        let back = engine.apply([at(70, "press-1.state", 1)])
        #expect(back.map(\.type) == [.stateChanged], "a 10 s stop in file time is a micro-stop")
    }

    /// A machine's clock comes from the input that feeds its rules: a device tag makes it the wall
    /// clock; historian-only tags, the files' times. Reason codes are numbers, order and lot tags text.
    @Test func aMachinesClockAndTextTagsComeFromTheConfiguration() throws {
        let config = try ConfigLoader.parse(
            """
            version: 1
            agent: { id: a, site: s, line: l }
            devices:
              - name: press-1
                modbus: { tcp: { host: 127.0.0.1, port: 502 } }
                tags: [ { name: state, area: holding, address: 0, type: uint16 } ]
            historian:
              - name: pi
                directory: /tmp/pi
                layout: long
                timestamp: { column: T, format: iso8601 }
                tag_column: N
                value_column: V
                tags: { a: press-2.state, b: press-2.reason, c: press-2.order, d: press-2.count }
            machines:
              - name: press-1
                state: { tag: press-1.state, map: { 0: stopped, 1: running } }
              - name: press-2
                state: { tag: press-2.state, map: { 0: stopped, 1: running }, reason_tag: press-2.reason }
                work_order: { tag: press-2.order }
                counters: [ { tag: press-2.count, event: production.completed } ]
            """, file: "c.yaml")
        let rules = RuleSet(config: config)
        #expect(rules.machines.map(\.wallClock) == [true, false])
        #expect(rules.textTags == ["press-2.order"], "a reason code read as text would never be a number")
    }
}
