import EdgeAgent
import EdgeAgentCore
import Foundation
import Testing

@Suite struct RetryPolicyTests {
    @Test func ceilingsDoubleUpToTheMaximum() {
        let policy = RetryPolicy(SinkConfig.Retry())
        #expect(
            (1...7).map { policy.ceiling(attempt: $0).milliseconds } == [500, 1000, 2000, 4000, 8000, 10000, 10000])
    }

    @Test func delaysAreFullJitterBelowTheCeiling() {
        let policy = RetryPolicy(SinkConfig.Retry())
        var random = FastRandom()
        let delays = (0..<2000).map { _ in policy.delay(attempt: 3, using: &random).milliseconds }
        #expect(delays.allSatisfy { (0...2000).contains($0) })
        #expect(delays.min()! < 200 && delays.max()! > 1800, "spread over the whole range")
    }

    @Test func retryAfterWins() {
        var random = FastRandom()
        #expect(
            RetryPolicy(SinkConfig.Retry()).delay(attempt: 1, retryAfter: .seconds(30), using: &random) == .seconds(30))
    }
}

@Suite struct HTTPStatusClassifierTests {
    func outcome(_ status: Int, _ retryAfter: String? = nil) -> DeliveryOutcome {
        HTTPStatusClassifier.outcome(status: status, retryAfter: retryAfter, body: "b", now: Date())
    }

    @Test func followsTheDeliveryTable() {
        #expect(outcome(200) == .delivered)
        #expect(outcome(204) == .delivered)
        #expect(outcome(408) == .retry(.timeout, retryAfter: nil))
        #expect(outcome(429, "3") == .retry(.http_429, retryAfter: .seconds(3)))
        #expect(outcome(500) == .retry(.http_5xx, retryAfter: nil))
        #expect(outcome(503, "1") == .retry(.http_5xx, retryAfter: .seconds(1)))
        #expect(outcome(413) == .tooLarge)
        #expect(outcome(400) == .rejected(status: 400, body: "b"))
        #expect(outcome(422) == .rejected(status: 422, body: "b"))
        #expect(outcome(409) == .rejected(status: 409, body: "b"))
        for status in [401, 403, 404, 301, 308] {
            #expect(outcome(status) == .misconfigured(status: status, body: "b"))
        }
    }

    @Test func readsRetryAfterAsSecondsOrHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_795_096_428)
        #expect(HTTPStatusClassifier.parseRetryAfter("120", now: now) == .seconds(120))
        #expect(HTTPStatusClassifier.parseRetryAfter("Thu, 19 Nov 2026 13:54:18 GMT", now: now) == .seconds(30))
        #expect(HTTPStatusClassifier.parseRetryAfter("soon", now: now) == nil)
        #expect(HTTPStatusClassifier.parseRetryAfter("999999", now: now) == .seconds(3600), "capped at an hour")
    }
}

@Suite struct RateLimiterTests {
    @Test func allowsOneSecondsBurstThenPaces() {
        var limiter = RateLimiter(rate: 1000)
        let t0 = Duration.seconds(3)
        #expect(limiter.take(1000, now: t0) == .zero, "a burst of one second's worth")
        #expect(limiter.take(500, now: t0) == .milliseconds(500))
        #expect(limiter.take(500, now: t0 + .milliseconds(500)) == .milliseconds(500), "the debt is paid first")
        #expect(limiter.take(1000, now: t0 + .seconds(10)) == .zero, "the bucket refills to one second's worth")
        #expect(limiter.take(1, now: t0 + .seconds(10)) == .milliseconds(1))
    }
}
