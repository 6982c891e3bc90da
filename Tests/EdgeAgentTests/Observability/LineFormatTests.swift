import EdgeAgentCore
import Foundation
import Testing

@testable import EdgeAgent

@Suite struct LineFormatTests {
    @Test func aLogfmtValueNeverSpansLines() {
        #expect(LineLogHandler.logfmtValue("plain") == "plain")
        #expect(LineLogHandler.logfmtValue("two words") == #""two words""#)
        #expect(LineLogHandler.logfmtValue("line 1\nline 2\r\tend") == #""line 1\nline 2\r\tend""#)
        #expect(LineLogHandler.logfmtValue(#"say "hi" \ bye"#) == #""say \"hi\" \\ bye""#)
        #expect(LineLogHandler.logfmtValue("bell\u{7}") == #""bell\u{7}""#)
        #expect(LineLogHandler.logfmtValue("") == #""""#)
    }

    @Test func outboxStatusJSONSaysNullWhenNothingIsPending() throws {
        let status = OutboxStatus(
            outbox_bytes: 4096,
            sinks: [
                "idle": SinkStatus(pending: 0, oldest_pending_age_s: nil, dead: 0, delivered: 5),
                "busy": SinkStatus(pending: 2, oldest_pending_age_s: 1.5, dead: 1, delivered: 3),
            ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(status), as: UTF8.self)
        #expect(json.contains(#""idle":{"dead":0,"delivered":5,"oldest_pending_age_s":null,"pending":0}"#), "\(json)")
        #expect(json.contains(#""busy":{"dead":1,"delivered":3,"oldest_pending_age_s":1.5,"pending":2}"#), "\(json)")
    }
}
