import EdgeAgent
import EdgeAgentCore
import Foundation
import Testing

@Suite struct HistorianTimeTests {
    let berlin = TimeZone(identifier: "Europe/Berlin")!

    func read(_ texts: [String], _ format: String = "iso8601", zone: TimeZone = TimeZone(identifier: "UTC")!) throws
        -> [String]
    {
        var time = HistorianTime(format: try #require(HistorianTime.Format(format)), zone: zone)
        return try texts.map { Timestamp(milliseconds: try time.read(Substring($0))).rfc3339 }
    }

    @Test func readsEveryFormat() throws {
        #expect(
            try read([
                "2026-11-26T16:24:35.25Z", "2026-11-26 16:24:35+01:00", "2026-11-26T16:24:35.123456-0530",
                "2026-11-26T16:24",
            ])
                == [
                    "2026-11-26T16:24:35.250Z", "2026-11-26T15:24:35.000Z", "2026-11-26T21:54:35.123Z",
                    "2026-11-26T16:24:00.000Z",
                ])
        #expect(
            try read(["1795096428", "1795096428.5"], "unix_s") == [
                "2026-11-19T13:53:48.000Z", "2026-11-19T13:53:48.500Z",
            ])
        #expect(try read(["1795096428123"], "unix_ms") == ["2026-11-19T13:53:48.123Z"])
        #expect(try read(["26.11.2026 16:24:35"], "%d.%m.%Y %H:%M:%S", zone: berlin) == ["2026-11-26T15:24:35.000Z"])
        #expect(try read(["11/26/26 04:24:35.5 PM"], "%m/%d/%y %I:%M:%S.%f %p") == ["2026-11-26T16:24:35.500Z"])
        #expect(try read(["26-Nov-2026 16:24:35"], "%d-%b-%Y %T") == ["2026-11-26T16:24:35.000Z"])
    }

    /// 25 October 2026: clocks go back at 03:00 CEST to 02:00 CET; 02:00-02:59 happens twice.
    @Test func aContinuousSeriesThroughTheRepeatedHourReadsBothPasses() throws {
        let local = ["01:30", "02:00", "02:30", "02:59", "02:00", "02:30", "03:00"].map { "2026-10-25T\($0):00" }
        #expect(
            try read(local, zone: berlin) == [
                "2026-10-24T23:30:00.000Z", "2026-10-25T00:00:00.000Z", "2026-10-25T00:30:00.000Z",
                "2026-10-25T00:59:00.000Z",
                "2026-10-25T01:00:00.000Z", "2026-10-25T01:30:00.000Z", "2026-10-25T02:00:00.000Z",
            ])
    }

    @Test func aSeriesThatOnlyTouchesTheRepeatedHourReadsTheFirstPass() throws {
        let local = ["01:45", "02:15", "03:15"].map { "2026-10-25T\($0):00" }
        #expect(
            try read(local, zone: berlin) == [
                "2026-10-24T23:45:00.000Z", "2026-10-25T00:15:00.000Z", "2026-10-25T02:15:00.000Z",
            ])
    }

    /// 29 March 2026: clocks go forward at 02:00 CET to 03:00 CEST; 02:30 never happens.
    @Test func aTimeInTheSkippedHourIsMalformed() throws {
        var time = HistorianTime(format: .iso8601, zone: berlin)
        #expect(Timestamp(milliseconds: try time.read("2026-03-29T01:59:00")).rfc3339 == "2026-03-29T00:59:00.000Z")
        let error = #expect(throws: HistorianTime.Invalid.self) { try time.read("2026-03-29T02:30:00") }
        #expect(error?.reason.contains("does not exist in Europe/Berlin") == true)
    }

    @Test func rejectsWhatIsNotATime() {
        var time = HistorianTime(format: .iso8601, zone: TimeZone(identifier: "UTC")!)
        for bad in ["", "2026-13-01T00:00:00", "2026-02-30T00:00:00", "yesterday", "2026-11-26T16:24:35Zjunk"] {
            #expect(throws: HistorianTime.Invalid.self, "\(bad)") { try time.read(Substring(bad)) }
        }
        #expect(HistorianTime.Format("%Q") == nil, "an unsupported directive is refused")
    }
}
