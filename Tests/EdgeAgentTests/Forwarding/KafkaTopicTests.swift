import EdgeAgentCore
import Testing

@Suite struct KafkaTopicTests {
    @Test func fillsTheTemplateAndReplacesWhatKafkaDoesNotAllow() {
        let values = [
            "{site}": "plant a", "{line}": "line/7", "{agent}": "edge-1", "{type}": "tag.changed",
            "{subject}": "press-1.temp°C",
        ]
        #expect(KafkaTopic.fill("edge.{site}.events", values) == "edge.plant_a.events")
        #expect(
            KafkaTopic.fill("{line}.{agent}.{type}.{subject}", values) == "line_7.edge-1.tag.changed.press-1.temp_C")
        #expect(KafkaTopic.name("a+b#c:d") == "a_b_c_d")
    }
}
