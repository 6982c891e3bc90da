import Testing

@testable import EdgeAgent

/// The CloudEvents Kafka binding's binary mode, from the stored envelope.
@Suite struct KafkaSinkBinaryTests {
    static let head =
        #"{"specversion":"1.0","id":"0190a1b2-0000-7000-8000-000000000001","source":"edge/line-7","#
        + #""type":"quality.exception.raised","subject":"press-1","datacontenttype":"application/json","#

    @Test func binaryModeSendsTheAttributesAsHeadersAndTheDataAsTheValue() {
        let (headers, data) = KafkaSink.binary((Self.head + #""sequence":"7","data":{"value":3}}"#)[...])
        #expect(data == #"{"value":3}"#)
        #expect(headers.contains { $0 == ("content-type", "application/json") })
        #expect(headers.contains { $0 == ("ce_subject", "press-1") })
        #expect(headers.contains { $0 == ("ce_sequence", "7") })
    }

    /// The envelope's `data` is its last attribute; a `data` key inside it is data.
    @Test func binaryModeKeepsTheWholeDataWhenTheDataHoldsADataKey() {
        let (headers, data) = KafkaSink.binary(
            (Self.head + #""sequence":"7","data":{"reason":{"x":1,"data":2}}}"#)[...])
        #expect(data == #"{"reason":{"x":1,"data":2}}"#)
        #expect(headers.contains { $0 == ("ce_subject", "press-1") })
    }
}
