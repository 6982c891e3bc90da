import EdgeAgentCore
import Testing

/// The forwarder's policy fed events as its driver feeds them: each row is an event, the time on
/// the forwarder's clock, and what the machine answers.
@Suite struct ForwarderStateMachineTests {
    typealias Machine = ForwarderStateMachine
    typealias Row = (event: Machine.Event, at: Duration, answer: Machine.Action)

    static let seed: UInt64 = 7
    static let probeInterval = Duration.milliseconds(500)

    /// A machine whose outbox is open: its next step is a claim after the cursor.
    static func machine(
        maxEvents: Int = 4, linger: Duration = .zero, rate: Double? = nil,
        retry: SinkConfig.Retry = .init(initial: .seconds(10), max: .seconds(10), multiplier: 2)
    ) -> Machine {
        var sink = SinkConfig(name: "mw", kind: .http(.init(url: "http://127.0.0.1:1/")))
        (sink.batch.maxEvents, sink.batch.linger, sink.rateLimit, sink.retry) = (maxEvents, linger, rate, retry)
        var machine = Machine(.init(sink, probeInterval: probeInterval), random: FastRandom(seed: seed))
        _ = machine.receive(.start, at: .zero)
        _ = machine.receive(.opened, at: .zero)
        return machine
    }

    static func events(_ sequences: ClosedRange<Int64>) -> [StoredEvent] {
        sequences.map {
            StoredEvent(
                sequence: $0, id: "e\($0)", type: "production.completed", time: .init(milliseconds: 0), body: "{}")
        }
    }

    /// The batch of `sequences` after the cursor.
    static func claim(_ sequences: ClosedRange<Int64>, requeued: Bool = false) -> Claim {
        Claim(
            events: events(sequences), requeued: requeued, cursor: requeued ? 0 : sequences.lowerBound - 1,
            through: requeued ? 0 : sequences.upperBound)
    }

    /// The backoff's draws in the order the machine makes them (same seed).
    static func jitter(_ attempts: [Int], retry: SinkConfig.Retry) -> [Duration] {
        var random = FastRandom(seed: seed)
        return attempts.map { RetryPolicy(retry).delay(attempt: $0, using: &random) }
    }

    static func feed(_ machine: inout Machine, _ rows: [Row], sourceLocation: SourceLocation = #_sourceLocation) {
        for (index, row) in rows.enumerated() {
            let answer = machine.receive(row.event, at: row.at)
            #expect(answer == row.answer, "row \(index): \(row.event)", sourceLocation: sourceLocation)
        }
    }

    @Test func startsByOpeningItsOwnConnectionThenClaimsAfterTheCursor() {
        var machine = Machine(
            .init(SinkConfig(name: "mw", kind: .http(.init(url: "http://127.0.0.1:1/"))), probeInterval: .seconds(1)),
            random: FastRandom(seed: 1))
        Self.feed(
            &machine,
            [
                (.start, .zero, .init(.openOutbox)),
                (.opened, .zero, .init(.claim(after: 0, holding: []))),
            ])
    }

    @Test func aFullBatchIsDeliveredWhileTheNextIsClaimedThenSettled() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (
                    .delivered(.delivered), .zero,
                    .init([.countDelivered(batch.events[...])], .settle(batch, delivered: 4, dead: []))
                ),
                (.settled, .zero, .init([.health(.delivered(4))], .awaitClaimAhead)),
                (.claimed(Claim(events: [], requeued: false, cursor: 4, through: 4)), .zero, .init(.waitForDoorbell)),
                (.doorbellRang, .seconds(1), .init(.claim(after: 0, holding: []))),
            ])
    }

    @Test func aSmallBatchLingersAndIsToppedUpWithWhatCameAfterIt() {
        var machine = Self.machine(maxEvents: 10, linger: .seconds(5))
        let small = Self.claim(1...3)
        let more = Self.claim(4...6)
        Self.feed(
            &machine,
            [
                (.claimed(small), .seconds(1), .init(.sleep(until: .seconds(6)))),
                (.timerFired, .seconds(6), .init(.claim(after: 3, holding: small.events))),
                (.claimed(more), .seconds(6), .init(.deliver(Self.events(1...6)[...], claimAheadAfter: 6))),
            ])
    }

    @Test func reQueuedEventsFoundWhileLingeringWaitForTheirOwnClaim() {
        var machine = Self.machine(maxEvents: 10, linger: .seconds(5))
        let small = Self.claim(8...9)
        Self.feed(
            &machine,
            [
                (.claimed(small), .zero, .init(.sleep(until: .seconds(5)))),
                (.timerFired, .seconds(5), .init(.claim(after: 9, holding: small.events))),
                (
                    .claimed(Self.claim(2...3, requeued: true)), .seconds(5),
                    .init(.deliver(small.events[...], claimAheadAfter: 9))
                ),
            ])
    }

    @Test func reQueuedEventsNeitherLingerNorHaveTheNextBatchClaimedBesideThem() {
        var machine = Self.machine(maxEvents: 10, linger: .seconds(5))
        let requeued = Self.claim(2...3, requeued: true)
        Self.feed(
            &machine,
            [
                (
                    .claimed(requeued), .zero,
                    .init(.deliver(requeued.events[...], claimAheadAfter: nil, requeued: true))
                ),
                (
                    .delivered(.delivered), .zero,
                    .init([.countDelivered(requeued.events[...])], .settle(requeued, delivered: 2, dead: []))
                ),
                (.settled, .zero, .init([.health(.delivered(2))], .claim(after: 0, holding: []))),
            ])
    }

    @Test func anEmptyClaimSettlesOnlyWhatTheSinksFilterSkipped() {
        var machine = Self.machine()
        let skipped = Claim(events: [], requeued: false, cursor: 4, through: 9)
        Self.feed(
            &machine,
            [
                (.claimed(skipped), .zero, .init(.settle(skipped, delivered: 0, dead: []))),
                (.settled, .zero, .init(.waitForDoorbell)),
            ])
    }

    /// A poison event (SPEC 5.1): the batch is halved until the rejected event is alone, which is
    /// dead-lettered; the rest is delivered, and the batch is settled once, at the end.
    @Test func aRejectedEventIsIsolatedByHalvingAndDeadLetteredAlone() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        let e = batch.events
        let split: [Machine.Effect] = [.count(.http_4xx), .health(.failed(.http_4xx))]
        let rejected = Machine.Event.delivered(.rejected(status: 422, body: "bad quantity"))
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(e[...], claimAheadAfter: 4))),
                (rejected, .zero, .init(split, .deliver(e[0..<2], claimAheadAfter: nil))),
                (
                    .delivered(.delivered), .zero,
                    .init([.countDelivered(e[0..<2])], .deliver(e[2...], claimAheadAfter: nil))
                ),
                (rejected, .zero, .init(split, .deliver(e[2..<3], claimAheadAfter: nil))),
                (
                    rejected, .zero,
                    .init(
                        [.count(.rejected), .health(.failed(.rejected)), .log(.deadLettered(e[2], status: 422))],
                        .deliver(e[3..<4], claimAheadAfter: nil))
                ),
                (
                    .delivered(.delivered), .zero,
                    .init(
                        [.countDelivered(e[3..<4])],
                        .settle(
                            batch, delivered: 3, dead: [DeadLetter(sequence: 3, status: 422, response: "bad quantity")])
                    )
                ),
            ])
    }

    @Test func aSingleEventStillTooLargeIsDeadLetteredAs413() {
        var machine = Self.machine()
        let batch = Self.claim(1...1)
        let body = "a single event is larger than the receiver accepts"
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 1))),
                (
                    .delivered(.tooLarge), .zero,
                    .init(
                        [
                            .count(.rejected), .health(.failed(.rejected)),
                            .log(.deadLettered(batch.events[0], status: 413)),
                        ],
                        .settle(batch, delivered: 0, dead: [DeadLetter(sequence: 1, status: 413, response: body)]))
                ),
            ])
    }

    @Test func aRetryWaitsWhatRetryAfterSaysThenSendsTheSamePartAgain() {
        var machine = Self.machine()
        let batch = Self.claim(1...2)
        let failing: [Machine.Effect] = [.count(.http_429), .health(.failed(.http_429)), .log(.sinkFailing(.http_429))]
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 2))),
                (
                    .delivered(.retry(.http_429, retryAfter: .seconds(30))), .seconds(1),
                    .init(failing, .sleep(until: .seconds(31)))
                ),
                (.timerFired, .seconds(31), .init(.deliver(batch.events[...], claimAheadAfter: nil))),
                (
                    .delivered(.delivered), .seconds(31),
                    .init(
                        [.countDelivered(batch.events[...]), .health(.recovered), .log(.sinkRecovered)],
                        .settle(batch, delivered: 2, dead: []))
                ),
            ])
    }

    @Test func aFailureIsLoggedWhenItBeginsAndCountedEachTime() {
        var machine = Self.machine()
        let batch = Self.claim(1...2)
        let retry = SinkConfig.Retry(initial: .seconds(10), max: .seconds(10), multiplier: 2)
        let waits = Self.jitter([1, 2], retry: retry)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 2))),
                (
                    .delivered(.retry(.http_5xx, retryAfter: nil)), .zero,
                    .init(
                        [.count(.http_5xx), .health(.failed(.http_5xx)), .log(.sinkFailing(.http_5xx))],
                        .sleep(until: waits[0]))
                ),
                (.timerFired, waits[0], .init(.deliver(batch.events[...], claimAheadAfter: nil))),
                (
                    .delivered(.retry(.timeout, retryAfter: nil)), waits[0],
                    .init([.count(.timeout), .health(.failed(.timeout))], .sleep(until: waits[0] + waits[1]))
                ),
            ])
    }

    /// Only an unreachable sink is probed; the part goes again as soon as a probe answers,
    /// without waiting out the backoff.
    @Test func anUnreachableSinkIsProbedAndTheBatchGoesAsSoonAsItAnswers() throws {
        var machine = Self.machine()
        let batch = Self.claim(1...2)
        let wait = Self.jitter([1], retry: .init(initial: .seconds(10), max: .seconds(10), multiplier: 2))[0]
        try #require(wait > .seconds(2), "seed \(Self.seed) draws a backoff longer than the probes below")
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 2))),
                (
                    .delivered(.retry(.connect, retryAfter: nil)), .zero,
                    .init(
                        [.count(.connect), .health(.failed(.connect)), .log(.sinkFailing(.connect))],
                        .sleep(until: .milliseconds(500)))
                ),
                (.timerFired, .milliseconds(500), .init(.probe)),
                (.probed(answers: false), .milliseconds(600), .init(.sleep(until: .milliseconds(1100)))),
                (.timerFired, .milliseconds(1100), .init(.probe)),
                (.probed(answers: true), .milliseconds(1200), .init(.deliver(batch.events[...], claimAheadAfter: nil))),
            ])
    }

    @Test func aSinkThatAnswers5xxKeepsItsBackoffAndIsNotProbed() {
        var machine = Self.machine()
        let batch = Self.claim(1...2)
        let wait = Self.jitter([1], retry: .init(initial: .seconds(10), max: .seconds(10), multiplier: 2))[0]
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 2))),
                (
                    .delivered(.retry(.http_5xx, retryAfter: nil)), .zero,
                    .init(
                        [.count(.http_5xx), .health(.failed(.http_5xx)), .log(.sinkFailing(.http_5xx))],
                        .sleep(until: wait))
                ),
                (.timerFired, wait, .init(.deliver(batch.events[...], claimAheadAfter: nil))),
            ])
    }

    /// `batch` claimed and refused with 401, then sent again after the first backoff (`wait`).
    static func refused(_ batch: Claim, wait: Duration) -> [Row] {
        [
            (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: batch.through))),
            (
                .delivered(.misconfigured(status: 401, body: "no")), .zero,
                .init(
                    [
                        .count(.auth), .health(.misconfigured(status: 401)),
                        .log(.misconfigured(status: 401, body: "no")),
                    ],
                    .sleep(until: wait))
            ),
            (.timerFired, wait, .init(.deliver(batch.events[...], claimAheadAfter: nil))),
        ]
    }

    @Test func aMisconfiguredSinkIsRetriedNeverDeadLetteredAndReadyOnceItAccepts() {
        var machine = Self.machine()
        let batch = Self.claim(1...2)
        let retry = SinkConfig.Retry(initial: .seconds(10), max: .seconds(10), multiplier: 2)
        let waits = Self.jitter([1, 2], retry: retry)
        Self.feed(
            &machine,
            Self.refused(batch, wait: waits[0]) + [
                (
                    .delivered(.misconfigured(status: 403, body: "no")), waits[0],
                    .init([.count(.auth), .health(.misconfigured(status: 403))], .sleep(until: waits[0] + waits[1]))
                ),
                (.timerFired, waits[0] + waits[1], .init(.deliver(batch.events[...], claimAheadAfter: nil))),
                (
                    .delivered(.delivered), waits[0] + waits[1],
                    .init(
                        [.countDelivered(batch.events[...]), .health(.recovered), .log(.sinkRecovered)],
                        .settle(batch, delivered: 2, dead: []))
                ),
            ])
    }

    /// Credentials fixed, and the next batch is one event the sink rejects on its own: the sink
    /// answers, so it is ready again (a quiet line may send no other batch for hours).
    @Test func aMisconfiguredSinkThatRejectsASingleEventIsReadyAgain() {
        var machine = Self.machine()
        let batch = Self.claim(1...1)
        let waits = Self.jitter([1], retry: .init(initial: .seconds(10), max: .seconds(10), multiplier: 2))
        Self.feed(
            &machine,
            Self.refused(batch, wait: waits[0]) + [
                (
                    .delivered(.rejected(status: 422, body: "bad quantity")), waits[0],
                    .init(
                        [
                            .health(.recovered), .log(.sinkRecovered), .count(.rejected), .health(.failed(.rejected)),
                            .log(.deadLettered(batch.events[0], status: 422)),
                        ],
                        .settle(
                            batch, delivered: 0, dead: [DeadLetter(sequence: 1, status: 422, response: "bad quantity")])
                    )
                )
            ])
    }

    /// The settlement of a delivered batch is retried on its own: the sink is not sent it again.
    @Test func aFailingSettlementIsRetriedAloneAfterTheBackoff() {
        var machine = Self.machine()
        let batch = Self.claim(1...2)
        let retry = SinkConfig.Retry(initial: .seconds(10), max: .seconds(10), multiplier: 2)
        let waits = Self.jitter([1, 2], retry: retry)
        let settle = Machine.Next.settle(batch, delivered: 2, dead: [])
        let full = "SQLITE_FULL"
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 2))),
                (.delivered(.delivered), .zero, .init([.countDelivered(batch.events[...])], settle)),
                (
                    .outboxFailed(full), .zero,
                    .init(
                        [.count(.outbox), .health(.outboxFailed(full)), .log(.outboxFailing(full))],
                        .sleep(until: waits[0]))
                ),
                (.timerFired, waits[0], .init(settle)),
                (
                    .outboxFailed(full), waits[0],
                    .init([.count(.outbox), .health(.outboxFailed(full))], .sleep(until: waits[0] + waits[1]))
                ),
                (.timerFired, waits[0] + waits[1], .init(settle)),
                (
                    .settled, waits[0] + waits[1],
                    .init(
                        [.health(.outboxRecovered), .log(.outboxRecovered), .health(.delivered(2))], .awaitClaimAhead)
                ),
            ])
    }

    @Test func aFailedClaimBesideADeliveryIsClaimedAgainAfterTheBatch() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        let wait = Self.jitter([1], retry: .init(initial: .seconds(10), max: .seconds(10), multiplier: 2))[0]
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (
                    .delivered(.delivered), .zero,
                    .init([.countDelivered(batch.events[...])], .settle(batch, delivered: 4, dead: []))
                ),
                (.settled, .zero, .init([.health(.delivered(4))], .awaitClaimAhead)),
                (
                    .outboxFailed("busy"), .zero,
                    .init(
                        [.count(.outbox), .health(.outboxFailed("busy")), .log(.outboxFailing("busy"))],
                        .sleep(until: wait))
                ),
                (.timerFired, wait, .init(.claim(after: 4, holding: []))),
            ])
    }

    @Test func theRateLimitPacesEveryAttempt() {
        var machine = Self.machine(rate: 2)
        let batch = Self.claim(1...4)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.sleep(until: .seconds(1)))),
                (.timerFired, .seconds(1), .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (
                    .delivered(.retry(.http_429, retryAfter: .seconds(1))), .seconds(1),
                    .init(
                        [.count(.http_429), .health(.failed(.http_429)), .log(.sinkFailing(.http_429))],
                        .sleep(until: .seconds(2)))
                ),
                // The bucket refilled to its burst of two: the four events owe one second again.
                (.timerFired, .seconds(2), .init(.sleep(until: .seconds(3)))),
                (.timerFired, .seconds(3), .init(.deliver(batch.events[...], claimAheadAfter: nil))),
            ])
    }

    /// A stop while the sink answers: what it accepted is still recorded, then the forwarder stops.
    @Test func aStopWhileTheSinkAnswersStillSettlesWhatItAccepted() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (.stop, .zero, .init(.none)),
                (
                    .delivered(.delivered), .zero,
                    .init([.countDelivered(batch.events[...])], .settle(batch, delivered: 4, dead: []))
                ),
                (.settled, .zero, .init([.health(.delivered(4))], .stop)),
            ])
    }

    /// A stop during a retry is no failure of the sink: nothing is counted, nothing settled, and
    /// the batch stays pending.
    @Test func aStopDuringARetryLeavesTheBatchPending() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (.stop, .zero, .init(.none)),
                (.delivered(.retry(.connect, retryAfter: nil)), .zero, .init(.stop)),
            ])
    }

    @Test func aStopLeavesAHalvedBatchPendingWhenPartsAreLeft() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (
                    .delivered(.tooLarge), .zero,
                    .init(
                        [.count(.http_4xx), .health(.failed(.http_4xx))],
                        .deliver(batch.events[0..<2], claimAheadAfter: nil))
                ),
                (.stop, .zero, .init(.none)),
                (.delivered(.delivered), .zero, .init([.countDelivered(batch.events[0..<2])], .stop)),
            ])
    }

    @Test func aStopEndsAWaitAtOnce() {
        var idle = Self.machine()
        Self.feed(
            &idle,
            [
                (.claimed(Claim(events: [], requeued: false, cursor: 4, through: 4)), .zero, .init(.waitForDoorbell)),
                (.stop, .zero, .init(.stop)),
            ])
        var backingOff = Self.machine()
        let batch = Self.claim(1...4)
        Self.feed(
            &backingOff,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (
                    .delivered(.retry(.http_429, retryAfter: .seconds(5))), .zero,
                    .init(
                        [.count(.http_429), .health(.failed(.http_429)), .log(.sinkFailing(.http_429))],
                        .sleep(until: .seconds(5)))
                ),
                (.stop, .seconds(1), .init(.stop)),
            ])
    }

    @Test func aStopWhileAClaimIsInHandEndsWithItsResult() {
        var machine = Self.machine()
        Self.feed(
            &machine,
            [
                (.stop, .zero, .init(.none)),
                (.claimed(Self.claim(1...4)), .zero, .init(.stop)),
            ])
    }
}
