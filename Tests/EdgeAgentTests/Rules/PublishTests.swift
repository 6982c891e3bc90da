import EdgeAgentCore
import Foundation
import Testing

@testable import EdgeAgent

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

    /// A float register's NaN: going to it is a change (published as `null`), staying at it is
    /// neither an event nor a changed entry, and the first number after it is a change again.
    @Test func aTagGoingToNaNAndBackIsPublishedEachWayAndOnceAtNaN() {
        var engine = RuleEngine(rules: RuleSet(machines: [], published: ["press-1.melt": 0.5]))
        var events: [Event] = []
        var changedEntries: [[RuleState.Entry]] = []
        for (t, value) in [(0, 210.0), (1, .nan), (2, .nan), (3, 210.0), (4, 210.2)] {
            let before = engine.state
            let reading = [at(Double(t), "press-1.melt", .double(value))]
            events += engine.apply(reading)
            changedEntries.append(engine.state.changed(from: before, reading: reading))
        }
        let values = events.map { event in
            var json: [UInt8] = []
            event.data["value"]?.write(to: &json)
            return String(decoding: json, as: UTF8.self)
        }
        #expect(values == ["210", "null", "210"])
        #expect(changedEntries.map(\.count) == [1, 1, 0, 1, 0])
    }

    /// Devices whose names hold dots keep their tags apart: a tag's device is its name up to
    /// its last dot (a tag's own name has none).
    @Test func devicesWithDotsInTheirNamesHaveARowEach() {
        let rules = RuleSet(machines: [], published: ["hall1.press1.a": 0, "hall1.press2.a": 0])
        var engine = RuleEngine(rules: rules)
        _ = engine.apply([at(0, "hall1.press2.a", .int(1))])
        let before = engine.state
        let reading = [at(1, "hall1.press1.a", .int(2))]
        _ = engine.apply(reading)
        let rows = StoredRuleState.rows(engine.state.changed(from: before, reading: reading), of: engine.state)
        #expect(rows.map(\.key) == ["rules.published-tags.hall1.press1"])
        #expect(engine.state.published.devices.keys.sorted() == ["hall1.press1", "hall1.press2"])
    }

    /// A reading of one device changes and stores only that device's published tags: its rows
    /// name that device alone and hold its tags alone, while another device publishes too.
    @Test func aReadingOfOneDeviceStoresOnlyThatDevicesRow() {
        let rules = RuleSet(machines: [], published: ["plc.a": 0, "plc.b": 0, "line2.e": 0, "line2.f": 0])
        var engine = RuleEngine(rules: rules)
        _ = engine.apply([at(0, "line2.e", .int(1)), at(0, "line2.f", .int(2))])
        _ = engine.apply([at(1, "plc.a", .int(3)), at(1, "plc.b", .int(4))])
        let before = engine.state
        let reading = [at(2, "plc.a", .int(5)), at(2, "plc.b", .int(4))]
        _ = engine.apply(reading)
        let changed = engine.state.changed(from: before, reading: reading)
        #expect(changed == [.published("plc.a")])
        let rows = StoredRuleState.rows(changed, of: engine.state)
        #expect(rows.map(\.key) == ["rules.published-tags.plc"])
        let stored = StoredRuleState.load(Dictionary(uniqueKeysWithValues: rows.map { ($0.key, $0.value ?? "") }))
        #expect(stored.errors.isEmpty)
        #expect(stored.state.published.tags.sorted() == ["plc.a", "plc.b"])
        #expect(stored.state.published["plc.a"]?.value == .int(5))
        #expect(engine.state.published.devices.keys.sorted() == ["line2", "plc"])
    }

    /// The published tags are coded as one object by tag (an older store's whole-state `rules`
    /// row holds them so), whatever device they belong to, and read back equal.
    @Test func publishedTagsAreCodedAsOneObjectByTag() throws {
        var state = RuleState()
        state.published["plc.a"] = RuleState.Published(value: .int(3), quality: .good)
        state.published["line2.e"] = RuleState.Published(value: nil, quality: .bad)
        state.published["solo"] = RuleState.Published(value: .string("x"), quality: .good)
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(state)) as! [String: Any]
        let published = try #require(json["published"] as? [String: Any])
        #expect(published.keys.sorted() == ["line2.e", "plc.a", "solo"])
        #expect(try JSONDecoder().decode(RuleState.self, from: try JSONEncoder().encode(state)) == state)
        #expect(state.published.devices.keys.sorted() == ["line2", "plc", "solo"])
    }
}
