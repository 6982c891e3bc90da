import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct TimestampTests {
    @Test func formatsRFC3339InUTCWithMilliseconds() {
        #expect(Timestamp(milliseconds: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: 1_795_096_428_123).rfc3339 == "2026-11-19T13:53:48.123Z")
        #expect(Timestamp(milliseconds: 951_782_400_000).rfc3339 == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp(milliseconds: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
    }

    @Test func parsesWhatItFormatsAndOffsets() {
        for ms: Int64 in [0, 1_795_096_428_123, 951_782_400_000, 4_102_444_799_999] {
            #expect(Timestamp(rfc3339: Timestamp(milliseconds: ms).rfc3339)?.milliseconds == ms)
        }
        #expect(Timestamp(rfc3339: "2026-11-19T14:53:48.123+01:00")?.milliseconds == 1_795_096_428_123)
        #expect(Timestamp(rfc3339: "2026-11-19T13:53:48Z")?.milliseconds == 1_795_096_428_000)
        #expect(Timestamp(rfc3339: "2026-11-19 13:53:48") == nil)
        #expect(Timestamp(rfc3339: "yesterday") == nil)
    }
}
