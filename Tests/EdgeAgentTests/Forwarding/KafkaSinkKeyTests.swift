import Testing

@testable import EdgeAgent

/// A record's key: the envelope's `subject`, read from the stored bytes.
@Suite struct KafkaSinkKeyTests {
    @Test(
        arguments: [
            (#"{"specversion":"1.0","id":"x","type":"t","subject":"press-1","time":"..."}"#, "press-1"),
            (#"{"specversion":"1.0","id":"x","type":"t","time":"...","data":{"a":1}}"#, ""),
            (#"{"type":"t","subject":"","data":{"subject":"other"}}"#, ""),
            (#"{"type":"t","subject":"line-7/press-2","data":{"subject":"other"}}"#, "line-7/press-2"),
            (#"{"type":"t","subject":"cut"#, "cut"),
        ])
    func theKeyIsTheEnvelopesSubject(body: String, subject: String) {
        #expect(KafkaSink.subject(of: body) == subject)
    }
}
