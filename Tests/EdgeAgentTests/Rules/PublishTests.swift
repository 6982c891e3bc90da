import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct PublishTests {
    @Test func publishesChangesBeyondTheDeadbandAndEveryQualityChange() {
        var engine = RuleEngine(rules: RuleSet(machines: [], published: ["press-1.energy": 0.5]))
        var events = engine.apply([at(0, "press-1.energy", .double(10))])
        events += engine.apply([at(1, "press-1.energy", .double(10.3))])
        events += engine.apply([at(2, "press-1.energy", .double(10.6))])
        events += engine.apply([at(3, "press-1.energy", nil)])
        events += engine.apply([at(4, "press-1.energy", nil)])
        events += engine.apply([at(5, "press-1.energy", .double(10.7))])
        #expect(events.map(\.type) == [.tagChanged, .tagChanged, .tagChanged, .tagChanged])
        #expect(events.map { $0.data["value"] } == [.double(10), 10.6, .null, 10.7])
        #expect(events.map { $0.string("quality") } == ["good", "good", "bad", "good"])
        #expect(events[0].subject == "press-1.energy" && events[0].string("tag") == "press-1.energy")
    }
}
