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

    /// An empty claim after `batch`: the batch's settlement, which waited for it, is made alone.
    static func nothingAfter(_ batch: Claim) -> Machine.Event {
        .claimed(Claim(events: [], requeued: false, cursor: batch.through, through: batch.through))
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

    @Test func aFullBatchIsDeliveredWhileTheNextIsClaimedThenSettledWhenNothingFollows() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (.delivered(.delivered), .zero, .init([.countDelivered(batch.events[...])], .awaitClaimAhead)),
                (Self.nothingAfter(batch), .zero, .init(.settle(.init(batch, delivered: 4, dead: [])))),
                (.settled, .zero, .init([.health(.delivered(4))], .waitForDoorbell)),
                (.doorbellRang, .seconds(1), .init(.claim(after: 0, holding: []))),
            ])
    }

    /// The writer records batch N while the sink takes N+1; N's result is taken before N+1's
    /// answer is acted on, and N+1's settlement goes beside N+2.
    @Test func aBatchIsSettledWhileTheNextIsDelivered() {
        var machine = Self.machine()
        let (first, second, third) = (Self.claim(1...4), Self.claim(5...8), Self.claim(9...12))
        let (settleFirst, settleSecond) = (
            Machine.Settlement(first, delivered: 4, dead: []), Machine.Settlement(second, delivered: 4, dead: [])
        )
        Self.feed(
            &machine,
            [
                (.claimed(first), .zero, .init(.deliver(first.events[...], claimAheadAfter: 4))),
                (.delivered(.delivered), .zero, .init([.countDelivered(first.events[...])], .awaitClaimAhead)),
                (
                    .claimed(second), .zero,
                    .init(.deliver(second.events[...], claimAheadAfter: 8, settling: settleFirst))
                ),
                (.delivered(.delivered), .zero, .init(.awaitSettlement)),
                (
                    .settled, .zero,
                    .init([.health(.delivered(4)), .countDelivered(second.events[...])], .awaitClaimAhead)
                ),
                (
                    .claimed(third), .zero,
                    .init(.deliver(third.events[...], claimAheadAfter: 12, settling: settleSecond))
                ),
            ])
    }

    /// A batch that is not sent at once (it lingers) does not hold the last one's settlement.
    @Test func aDeliveredBatchIsSettledBeforeTheNextLingers() {
        var machine = Self.machine(maxEvents: 10, linger: .seconds(5))
        let (full, small) = (Self.claim(1...10), Self.claim(11...12))
        Self.feed(
            &machine,
            [
                (.claimed(full), .zero, .init(.deliver(full.events[...], claimAheadAfter: 10))),
                (.delivered(.delivered), .zero, .init([.countDelivered(full.events[...])], .awaitClaimAhead)),
                (.claimed(small), .zero, .init(.settle(.init(full, delivered: 10, dead: [])))),
                (.settled, .seconds(1), .init([.health(.delivered(10))], .sleep(until: .seconds(5)))),
                (.timerFired, .seconds(5), .init(.claim(after: 12, holding: small.events))),
            ])
    }

    /// Events the filter skips after a delivered batch move the cursor only after that batch's settlement.
    @Test func skippedEventsAfterADeliveredBatchAreSettledAfterIt() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        let skipped = Claim(events: [], requeued: false, cursor: 4, through: 9)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (.delivered(.delivered), .zero, .init([.countDelivered(batch.events[...])], .awaitClaimAhead)),
                (.claimed(skipped), .zero, .init(.settle(.init(batch, delivered: 4, dead: [])))),
                (.settled, .zero, .init([.health(.delivered(4))], .settle(.init(skipped, delivered: 0, dead: [])))),
                (.settled, .zero, .init(.waitForDoorbell)),
            ])
    }

    /// Re-queued events found by the claim ahead go beside the last batch's settlement; the claim
    /// after them waits for their own.
    @Test func reQueuedEventsAfterADeliveredBatchAreSettledAfterItThenClaimedAfter() {
        var machine = Self.machine()
        let (batch, requeued) = (Self.claim(5...8), Self.claim(2...3, requeued: true))
        let settleBatch = Machine.Settlement(batch, delivered: 4, dead: [])
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 8))),
                (.delivered(.delivered), .zero, .init([.countDelivered(batch.events[...])], .awaitClaimAhead)),
                (
                    .claimed(requeued), .zero,
                    .init(.deliver(requeued.events[...], claimAheadAfter: nil, requeued: true, settling: settleBatch))
                ),
                (.delivered(.delivered), .zero, .init(.awaitSettlement)),
                (
                    .settled, .zero,
                    .init(
                        [.health(.delivered(4)), .countDelivered(requeued.events[...])],
                        .settle(.init(requeued, delivered: 2, dead: [])))
                ),
                (.settled, .zero, .init([.health(.delivered(2))], .claim(after: 0, holding: []))),
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
                    .init([.countDelivered(requeued.events[...])], .settle(.init(requeued, delivered: 2, dead: [])))
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
                (.claimed(skipped), .zero, .init(.settle(.init(skipped, delivered: 0, dead: [])))),
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
                (.delivered(.delivered), .zero, .init([.countDelivered(e[3..<4])], .awaitClaimAhead)),
                (
                    Self.nothingAfter(batch), .zero,
                    .init(
                        .settle(
                            .init(
                                batch, delivered: 3,
                                dead: [DeadLetter(sequence: 3, status: 422, response: "bad quantity")])))
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
                        .awaitClaimAhead)
                ),
                (
                    Self.nothingAfter(batch), .zero,
                    .init(
                        .settle(
                            .init(batch, delivered: 0, dead: [DeadLetter(sequence: 1, status: 413, response: body)])))
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
                        .awaitClaimAhead)
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
                        .awaitClaimAhead)
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
                        .awaitClaimAhead)
                ),
                (
                    Self.nothingAfter(batch), waits[0],
                    .init(
                        .settle(
                            .init(
                                batch, delivered: 0,
                                dead: [DeadLetter(sequence: 1, status: 422, response: "bad quantity")])))
                ),
            ])
    }

    /// The first batch and the second, delivered beside the first's settlement.
    static func deliveredBesideASettlement(_ first: Claim, _ second: Claim) -> [Row] {
        [
            (.claimed(first), .zero, .init(.deliver(first.events[...], claimAheadAfter: first.through))),
            (.delivered(.delivered), .zero, .init([.countDelivered(first.events[...])], .awaitClaimAhead)),
            (
                .claimed(second), .zero,
                .init(
                    .deliver(
                        second.events[...], claimAheadAfter: second.through,
                        settling: .init(first, delivered: first.events.count, dead: [])))
            ),
        ]
    }

    /// The settlement made beside the next delivery fails: it is retried alone with the backoff,
    /// the sink is not sent the batch again, and the next batch's answer waits for it, so its
    /// settlement comes after.
    @Test func aFailingSettlementIsRetriedAloneAfterTheBackoffBeforeAnythingNewer() {
        var machine = Self.machine()
        let (batch, next) = (Self.claim(1...2), Self.claim(3...4))
        let retry = SinkConfig.Retry(initial: .seconds(10), max: .seconds(10), multiplier: 2)
        let waits = Self.jitter([1, 2], retry: retry)
        let settle = Machine.Next.settle(.init(batch, delivered: 2, dead: []))
        let full = "SQLITE_FULL"
        Self.feed(
            &machine,
            Self.deliveredBesideASettlement(batch, next) + [
                (.delivered(.delivered), .zero, .init(.awaitSettlement)),
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
                        [
                            .health(.outboxRecovered), .log(.outboxRecovered), .health(.delivered(2)),
                            .countDelivered(next.events[...]),
                        ], .awaitClaimAhead)
                ),
                (Self.nothingAfter(next), waits[0] + waits[1], .init(.settle(.init(next, delivered: 2, dead: [])))),
            ])
    }

    /// A settlement that fails when a stop comes is not passed: the batch delivered beside it
    /// stays pending too (both are sent again after the restart).
    @Test func aStopAfterAFailedSettlementSettlesNothingNewer() {
        var machine = Self.machine()
        let (batch, next) = (Self.claim(1...2), Self.claim(3...4))
        let wait = Self.jitter([1], retry: .init(initial: .seconds(10), max: .seconds(10), multiplier: 2))[0]
        let full = "SQLITE_FULL"
        Self.feed(
            &machine,
            Self.deliveredBesideASettlement(batch, next) + [
                (.delivered(.delivered), .zero, .init(.awaitSettlement)),
                (
                    .outboxFailed(full), .zero,
                    .init(
                        [.count(.outbox), .health(.outboxFailed(full)), .log(.outboxFailing(full))],
                        .sleep(until: wait))
                ),
                (.stop, .seconds(1), .init(.stop)),
            ])
    }

    /// A stop while the sink takes a batch beside the last one's settlement: the settlement's
    /// result is taken first, then the batch the sink accepted is settled, then the forwarder stops.
    @Test func aStopDuringADeliveryBesideASettlementRecordsBothInOrder() {
        var machine = Self.machine()
        let (batch, next) = (Self.claim(1...2), Self.claim(3...4))
        Self.feed(
            &machine,
            Self.deliveredBesideASettlement(batch, next) + [
                (.stop, .zero, .init(.none)),
                (.delivered(.delivered), .zero, .init(.awaitSettlement)),
                (
                    .settled, .zero,
                    .init(
                        [.health(.delivered(2)), .countDelivered(next.events[...])],
                        .settle(.init(next, delivered: 2, dead: [])))
                ),
                (.settled, .zero, .init([.health(.delivered(2))], .stop)),
            ])
    }

    /// The sink fails the batch beside the settlement at a stop: the settlement is still taken,
    /// and the failed batch stays pending.
    @Test func aStopDuringAFailedDeliveryBesideASettlementStillTakesTheSettlement() {
        var machine = Self.machine()
        let (batch, next) = (Self.claim(1...2), Self.claim(3...4))
        Self.feed(
            &machine,
            Self.deliveredBesideASettlement(batch, next) + [
                (.stop, .zero, .init(.none)),
                (.delivered(.retry(.connect, retryAfter: nil)), .zero, .init(.awaitSettlement)),
                (.settled, .zero, .init([.health(.delivered(2))], .stop)),
            ])
    }

    /// A batch delivered whose settlement waits for the claim ahead is settled when a stop comes.
    @Test func aStopWhileTheClaimAheadIsAwaitedSettlesTheDeliveredBatch() {
        var machine = Self.machine()
        let (batch, next) = (Self.claim(1...2), Self.claim(3...4))
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 2))),
                (.delivered(.delivered), .zero, .init([.countDelivered(batch.events[...])], .awaitClaimAhead)),
                (.stop, .zero, .init(.none)),
                (.claimed(next), .zero, .init(.settle(.init(batch, delivered: 2, dead: [])))),
                (.settled, .zero, .init([.health(.delivered(2))], .stop)),
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
                (.delivered(.delivered), .zero, .init([.countDelivered(batch.events[...])], .awaitClaimAhead)),
                (
                    .outboxFailed("busy"), .zero,
                    .init(
                        [.count(.outbox), .health(.outboxFailed("busy")), .log(.outboxFailing("busy"))],
                        .sleep(until: wait))
                ),
                (.timerFired, wait, .init(.claim(after: 4, holding: []))),
                (
                    .claimed(Self.claim(5...8)), wait,
                    .init(
                        [.health(.outboxRecovered), .log(.outboxRecovered)],
                        .deliver(
                            Self.events(5...8)[...], claimAheadAfter: 8,
                            settling: .init(batch, delivered: 4, dead: [])))
                ),
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
                    .init([.countDelivered(batch.events[...])], .settle(.init(batch, delivered: 4, dead: [])))
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

    /// The parts before the one in hand are settled (the cursor moves past them); the rest stays pending.
    @Test func aStopSettlesTheDeliveredPartsOfAHalvedBatchAndLeavesTheRestPending() {
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
                (
                    .delivered(.delivered), .zero,
                    .init(
                        [.countDelivered(batch.events[0..<2])],
                        .settle(.init(Self.claim(1...2), delivered: 2, dead: [])))
                ),
                (.settled, .zero, .init([.health(.delivered(2))], .stop)),
            ])
    }

    /// A sink reports that only the leading events were accepted: they count as delivered, and
    /// only the rest of the part is sent again; the batch is settled whole once it is delivered.
    @Test func aPartlyDeliveredPartIsCountedAndOnlyItsRestIsSentAgain() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        let e = batch.events
        let wait = Self.jitter([1], retry: .init(initial: .seconds(10), max: .seconds(10), multiplier: 2))[0]
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(e[...], claimAheadAfter: 4))),
                (
                    .delivered(.partlyDelivered(3, rest: .retry(.timeout, retryAfter: nil))), .zero,
                    .init(
                        [
                            .countDelivered(e[0..<3]), .count(.timeout), .health(.failed(.timeout)),
                            .log(.sinkFailing(.timeout)),
                        ],
                        .sleep(until: wait))
                ),
                (.timerFired, wait, .init(.deliver(e[3..<4], claimAheadAfter: nil))),
                (
                    .delivered(.delivered), wait,
                    .init([.countDelivered(e[3..<4]), .health(.recovered), .log(.sinkRecovered)], .awaitClaimAhead)
                ),
                (Self.nothingAfter(batch), wait, .init(.settle(.init(batch, delivered: 4, dead: [])))),
            ])
    }

    /// A stop ends the sink's attempt with only its leading events acknowledged (a Kafka run of
    /// delivery reports): those are settled, so a restart does not send them again.
    @Test func aStopSettlesTheLeadASinkReportsDelivered() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (.stop, .zero, .init(.none)),
                (
                    .delivered(.partlyDelivered(3, rest: .retry(.connect, retryAfter: nil))), .zero,
                    .init(
                        [.countDelivered(batch.events[0..<3])],
                        .settle(.init(Self.claim(1...3), delivered: 3, dead: [])))
                ),
                (.settled, .zero, .init([.health(.delivered(3))], .stop)),
            ])
    }

    /// What a sink reported delivered before it failed is settled by a stop during the backoff.
    @Test func aStopDuringARetrySettlesWhatWasPartlyDelivered() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        let wait = Self.jitter([1], retry: .init(initial: .seconds(10), max: .seconds(10), multiplier: 2))[0]
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (
                    .delivered(.partlyDelivered(2, rest: .retry(.http_5xx, retryAfter: nil))), .zero,
                    .init(
                        [
                            .countDelivered(batch.events[0..<2]), .count(.http_5xx), .health(.failed(.http_5xx)),
                            .log(.sinkFailing(.http_5xx)),
                        ],
                        .sleep(until: wait))
                ),
                (.stop, .seconds(1), .init(.settle(.init(Self.claim(1...2), delivered: 2, dead: [])))),
                (.settled, .seconds(1), .init([.health(.delivered(2))], .stop)),
            ])
    }

    /// A count of none, or of the whole part or more, is not taken as a delivery: the rest's
    /// answer holds for the whole part.
    @Test func aPartialCountOfNoneOrPastThePartIsNotTrusted() {
        var machine = Self.machine()
        let batch = Self.claim(1...4)
        let failing: [Machine.Effect] = [.count(.timeout), .health(.failed(.timeout)), .log(.sinkFailing(.timeout))]
        Self.feed(
            &machine,
            [
                (.claimed(batch), .zero, .init(.deliver(batch.events[...], claimAheadAfter: 4))),
                (
                    .delivered(.partlyDelivered(4, rest: .retry(.timeout, retryAfter: .seconds(1)))), .zero,
                    .init(failing, .sleep(until: .seconds(1)))
                ),
                (.timerFired, .seconds(1), .init(.deliver(batch.events[...], claimAheadAfter: nil))),
                (
                    .delivered(.partlyDelivered(0, rest: .retry(.timeout, retryAfter: .seconds(1)))), .seconds(1),
                    .init([.count(.timeout), .health(.failed(.timeout))], .sleep(until: .seconds(2)))
                ),
            ])
    }

    /// Re-queued events a stop settles in part leave the queue; the cursor is not theirs to move.
    @Test func aStopSettlesTheDeliveredLeadOfReQueuedEventsByTheirQueue() {
        var machine = Self.machine()
        let requeued = Self.claim(2...5, requeued: true)
        var lead = requeued
        lead.events = Array(requeued.events[0..<2])
        Self.feed(
            &machine,
            [
                (
                    .claimed(requeued), .zero,
                    .init(.deliver(requeued.events[...], claimAheadAfter: nil, requeued: true))
                ),
                (.stop, .zero, .init(.none)),
                (
                    .delivered(.partlyDelivered(2, rest: .retry(.connect, retryAfter: nil))), .zero,
                    .init([.countDelivered(requeued.events[0..<2])], .settle(.init(lead, delivered: 2, dead: [])))
                ),
                (.settled, .zero, .init([.health(.delivered(2))], .stop)),
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
