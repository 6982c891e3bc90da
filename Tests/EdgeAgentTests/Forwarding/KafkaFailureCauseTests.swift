import EdgeAgentCore
import Testing

@testable import EdgeAgent

/// Which error decides a failed transaction (`exactly_once`), whatever order librdkafka served
/// the delivery reports in, and what each error tells the forwarder.
@Suite struct KafkaFailureCauseTests {
    /// Kafka's MESSAGE_TOO_LARGE and INVALID_RECORD; librdkafka's _PURGE_QUEUE and _PURGE_INFLIGHT.
    static let tooLarge: Int32 = 10
    static let invalid: Int32 = 87
    static let purgedQueued: Int32 = -152
    static let purgedInFlight: Int32 = -151
    /// The commit's error when a record sent before made the transaction abortable.
    static let commit = TransactionError(
        failure: .abortable, code: tooLarge, text: "ProduceRequest failed: Broker: Message size too large")

    /// The reports of one transaction, in the order served, as the producer's callback records them.
    static func failed(after reports: [(token: Int, code: Int32)]) -> (token: Int, code: Int32)? {
        var state = KafkaProducer.SessionState()
        for report in reports { state.recordFailure(token: report.token, code: report.code) }
        return state.failedInTransaction
    }

    @Test func theRecordThatFailedDecidesWhetherItsReportCameBeforeOrAfterThePurges() {
        let orders: [[(token: Int, code: Int32)]] = [
            [(31, Self.tooLarge), (0, Self.purgedQueued)],
            [(0, Self.purgedQueued), (31, Self.tooLarge)],
            [(32, Self.purgedInFlight), (0, Self.purgedQueued), (31, Self.tooLarge), (33, 0)],
        ]
        for reports in orders {
            let cause = KafkaSink.cause(of: Self.commit, failed: Self.failed(after: reports))
            #expect(cause.token == 31 && cause.code == Self.tooLarge, "\(reports)")
            #expect(cause.text == "Broker: Message size too large (sequence 31)")
            #expect(cause.failure == .abortable)
        }
    }

    @Test func onlyPurgesReportedLeaveTheCauseToTheCommitsOwnError() {
        #expect(KafkaProducer.Code.purged == [Self.purgedQueued, Self.purgedInFlight])
        let failed = Self.failed(after: [(0, Self.purgedQueued), (31, Self.purgedInFlight)])
        #expect(failed?.token == 0, "a purge is kept while nothing else failed")
        let cause = KafkaSink.cause(of: Self.commit, failed: failed)
        #expect(cause.code == Self.tooLarge && cause.token == nil && cause.text == Self.commit.text)
        #expect(KafkaSink.cause(of: Self.commit, failed: nil).code == Self.tooLarge, "no report yet")
    }

    @Test func theFirstOfTwoRealFailuresStays() {
        let failed = Self.failed(after: [(31, Self.tooLarge), (32, Self.invalid)])
        #expect(failed?.token == 31 && failed?.code == Self.tooLarge)
        #expect(Self.failed(after: [(31, 0), (0, 0)]) == nil, "deliveries are no failures")
    }

    /// An event too large is dead-lettered once alone (413) and splits a larger batch; the
    /// cursor record refused the same way is the cursor topic's configuration, never an event's.
    @Test func aRecordTooLargeIsAnEventsFaultUnlessItIsTheCursorRecord() {
        let text = "Broker: Message size too large"
        #expect(KafkaSink.outcome(code: Self.tooLarge, text: text, count: 1) == .rejected(status: 413, body: text))
        #expect(KafkaSink.outcome(code: Self.tooLarge, text: text, count: 8) == .tooLarge)
        #expect(
            KafkaSink.outcome(code: Self.tooLarge, text: text, count: 1, cursorRecord: true)
                == .misconfigured(status: Int(Self.tooLarge), body: text))
        let invalid = Self.invalid
        #expect(
            KafkaSink.outcome(code: invalid, text: "x", count: 3, cursorRecord: true)
                == .misconfigured(status: Int(invalid), body: "x"))
        #expect(KafkaSink.outcome(code: invalid, text: "x", count: 3) == .rejected(status: Int(invalid), body: "x"))
        #expect(
            KafkaSink.outcome(code: KafkaProducer.Code.timedOut, text: "x", count: 3)
                == .retry(.timeout, retryAfter: nil))
        #expect(KafkaSink.outcome(code: Self.purgedQueued, text: "x", count: 3) == .retry(.connect, retryAfter: nil))
    }
}
