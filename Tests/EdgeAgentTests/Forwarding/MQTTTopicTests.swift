import Testing

@testable import EdgeAgent

@Suite struct MQTTTopicTests {
    @Test func fillsTheTemplateAndKeepsValuesToOneLevel() {
        let values = [
            "{site}": "plant-a", "{line}": "line/7", "{agent}": "edge+1", "{type}": "production.completed",
            "{subject}": "press#1",
        ]
        #expect(
            MQTTSink.topic("plants/{site}/lines/{line}/{type}", values)
                == "plants/plant-a/lines/line_7/production.completed")
        #expect(MQTTSink.topic("a/{agent}/{subject}/status", values) == "a/edge_1/press_1/status")
    }

}
