import EdgeAgentCore
import Testing

@Suite struct TimeArgumentTests {
    @Test func aDurationCountsBackFromTheTimeGivenAndATimeIsTakenAsWritten() {
        let now = Timestamp(rfc3339: "2026-11-26T13:53:48.123Z")!
        #expect(TimeArgument.parse("2h", now: now) == Timestamp(rfc3339: "2026-11-26T11:53:48.123Z"))
        #expect(TimeArgument.parse("2026-11-01T00:00:00Z", now: now) == Timestamp(rfc3339: "2026-11-01T00:00:00Z"))
        #expect(TimeArgument.parse("yesterday", now: now) == nil)
    }
}
