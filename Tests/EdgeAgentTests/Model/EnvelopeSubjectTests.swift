import EdgeAgentCore
import Testing

/// The subject sinks key and route records by: read from the stored envelope's bytes, as the
/// event had it, whatever characters the encoder had to escape.
@Suite struct EnvelopeSubjectTests {
    @Test(
        arguments: [
            (#"{"specversion":"1.0","id":"x","type":"t","subject":"press-1","time":"..."}"#, "press-1"),
            (#"{"specversion":"1.0","id":"x","type":"t","time":"...","data":{"a":1}}"#, ""),
            (#"{"type":"t","subject":"","data":{"subject":"other"}}"#, ""),
            (#"{"type":"t","subject":"line-7/press-2","data":{"subject":"other"}}"#, "line-7/press-2"),
            (#"{"type":"t","subject":"cut"#, "cut"),
            (#"{"type":"t","subject":"cut\"#, "cut"),
        ])
    func theSubjectIsReadFromTheEnvelope(body: String, subject: String) {
        #expect(EnvelopeSubject.of(body) == subject)
    }

    @Test(
        arguments: [
            #"press "A""#, #"\\historian\Line1.Temp"#, "tab\there", "line\nfeed", "bell\u{07}", "Drücken ⚙︎ 1",
            #"a\"b"#,
        ])
    func aSubjectTheEncoderEscapedReadsAsTheEventHadIt(subject: String) {
        var encoder = EnvelopeEncoder(source: #"edge-agent/"subject":"not-this""#)
        var out = EncodedEvents()
        encoder.encode(
            Event(type: .stateChanged, subject: subject, time: Timestamp(milliseconds: 0), data: ["subject": "other"]),
            recorded: Timestamp(milliseconds: 0), into: &out)
        let body = String(decoding: out.bytes[out.start(0)..<out.ends[0]], as: UTF8.self)
        #expect(EnvelopeSubject.of(body) == subject)
        let escaped = out.bytes.withUnsafeBufferPointer { EnvelopeSubject.span(in: $0).escaped }
        #expect(escaped == subject.utf8.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C })
    }
}
