import EdgeAgentCore
import Foundation
import Testing

/// The CloudEvents envelope built at append: valid JSON with every attribute SPEC 4 names, the
/// id where `idRange` says, and the sequence written into its placeholder afterwards.
@Suite struct EnvelopeEncoderTests {
    @Test func eachEnvelopeIsACloudEventWithItsSequenceFilledInLater() throws {
        var encoder = EnvelopeEncoder(source: "edge-agent/plant-1/line \"A\"")
        var out = EncodedEvents()
        let recorded = Timestamp(milliseconds: 1_767_225_600_123)
        let events = [
            Event(
                type: .productionCompleted, subject: "press-1", time: Timestamp(milliseconds: 1_767_225_600_000),
                data: ["quantity": .int(3)]),
            Event(
                type: .stateChanged, subject: "press-2", time: Timestamp(milliseconds: 1_767_225_600_050),
                data: ["state": .string("running")]),
        ]
        for event in events { encoder.encode(event, recorded: recorded, into: &out) }
        #expect(out.count == 2)
        out.number(0, 7)
        out.number(1, 1_234_567_890_123)
        var ids: Set<String> = []
        for i in 0..<out.count {
            let bytes = Array(out.bytes[out.start(i)..<out.ends[i]])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            #expect(json["specversion"] as? String == "1.0")
            #expect(json["source"] as? String == "edge-agent/plant-1/line \"A\"")
            #expect(json["type"] as? String == events[i].type.name)
            #expect(json["subject"] as? String == events[i].subject)
            #expect(json["datacontenttype"] as? String == "application/json")
            #expect(json["recordedtime"] as? String == "2026-01-01T00:00:00.123Z")
            let id = try #require(json["id"] as? String)
            #expect(String(decoding: bytes[EnvelopeEncoder.idRange], as: UTF8.self) == id)
            ids.insert(id)
        }
        #expect(ids.count == 2)
        let sequences = (0..<2).map { i in
            (try? JSONSerialization.jsonObject(with: Data(out.bytes[out.start(i)..<out.ends[i]])) as? [String: Any])?[
                "sequence"] as? String
        }
        #expect(sequences == ["00000000000000000007", "00000001234567890123"])
    }
}
