import Clocks
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// A sink that answers from a script and records what it was sent: a fake for the forwarder's
/// logic only (the real HTTP sink is tested against a real server in the integration tests).
final class ScriptedSink: EventSink {
    struct Log {
        var attempts: [[Int64]] = []
        var accepted: [Int64] = []
        var probes = 0
        var reachable = false
    }

    /// (attempt number from 0, the batch's sequences) -> the answer.
    let script: @Sendable (Int, [Int64]) -> DeliveryOutcome
    let log = Mutex(Log())

    init(_ script: @escaping @Sendable (Int, [Int64]) -> DeliveryOutcome) { self.script = script }

    func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome {
        let sequences = events.map(\.sequence)
        return log.withLock { log in
            let outcome = script(log.attempts.count, sequences)
            log.attempts.append(sequences)
            if outcome == .delivered { log.accepted += sequences }
            return outcome
        }
    }

    func probe() async -> Bool {
        log.withLock {
            $0.probes += 1
            return $0.reachable
        }
    }
    func shutdown() async {}
    var snapshot: Log { log.withLock { $0 } }
}

/// A sink that takes a batch and answers only when the forwarder is being stopped: accepted,
/// or with only its first `lead` events accepted.
final class AnswersOnStopSink: EventSink {
    let taken = Mutex(0)
    let accepted = Mutex<[Int64]>([])
    let lead: Int?

    init(lead: Int? = nil) { self.lead = lead }

    func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome {
        taken.withLock { $0 += events.count }
        try? await Task.sleep(for: .seconds(60))  // ends when the forwarder's task is cancelled
        accepted.withLock { $0 += events.prefix(lead ?? events.count).map(\.sequence) }
        return lead.map { .partlyDelivered($0, rest: .retry(.connect, retryAfter: nil)) } ?? .delivered
    }
    func probe() async -> Bool { true }
    func shutdown() async {}
}

/// The test clock, and which sleeps on it are pending. A forwarder is one task: asleep until a
/// time, it does nothing before that time, which is how a test sees that nothing happens.
final class WatchedClock: Clock {
    typealias Instant = TestClock<Duration>.Instant
    let base = TestClock()
    private let pending = Mutex<[Instant: Int]>([:])

    var now: Instant { base.now }
    var minimumResolution: Duration { base.minimumResolution }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        pending.withLock { $0[deadline, default: 0] += 1 }
        defer { pending.withLock { $0[deadline]! -= 1 } }
        try await base.sleep(until: deadline, tolerance: tolerance)
    }

    /// Whether a sleep until `time` (from the clock's start) is pending.
    func isSleeping(until time: Duration) -> Bool { pending.withLock { $0[Instant(offset: time), default: 0] > 0 } }

    func advance(by duration: Duration) async { await base.advance(by: duration) }
}

/// The forwarder on its own: a real outbox, a scripted sink, and a test clock, so backoff,
/// linger and Retry-After are checked without waiting for them. The idle tick is an hour: the
/// sleeps the tests look for are the forwarder's own.
@Suite struct ForwarderTests {
    let dir = TemporaryDirectory()
    let clock = WatchedClock()
    let faults = OutboxFaults()

    /// Appends `count` events (sequences 2...count+1 after outbox.created) and builds the forwarder.
    func rig(
        _ count: Int, retry: SinkConfig.Retry = .init(), linger: Duration = .zero, maxEvents: Int = 500,
        jitterSeed: UInt64? = nil, _ script: @escaping @Sendable (Int, [Int64]) -> DeliveryOutcome
    ) async throws -> (Forwarder, ScriptedSink, OutboxWriter) {
        var opts = options(dir)
        opts.faults = faults
        let writer = try await OutboxWriter(options: opts)
        if count > 0 { try await writer.append((0..<count).map { event(.productionCompleted, $0) }) }
        var config = SinkConfig(name: "mw", kind: .http(.init(url: "http://127.0.0.1:1/")))
        config.retry = retry
        config.batch.linger = linger
        config.batch.maxEvents = maxEvents
        let sink = ScriptedSink(script)
        let forwarder = Forwarder(
            config: config, sink: sink, writer: writer, logger: Logger(label: "test"), clock: clock,
            idlePoll: .seconds(3600), jitterSeed: jitterSeed)
        return (forwarder, sink, writer)
    }

    /// Runs the forwarder while `body` drives the test clock; then stops it as the agent does.
    func running(_ forwarder: Forwarder, _ writer: OutboxWriter, _ body: () async throws -> Void) async throws {
        try await whileRunning([forwarder], body)
        await writer.close()
    }

    /// Advances the test clock in `step`s until `condition` holds (bounded in real time).
    func advance(by step: Duration = .milliseconds(100), until condition: () -> Bool) async -> Bool {
        await eventually(timeout: .seconds(20), every: .milliseconds(2)) {
            if condition() { return true }
            await clock.advance(by: step)
            return condition()
        }
    }

    func cursor() throws -> Int64 { try OutboxDatabase.openExisting(options(dir)).status().sinks["mw"]!.delivered }

    @Test func deliversInSequenceOrderInBatches() async throws {
        let (forwarder, sink, writer) = try await rig(1200, maxEvents: 500) { _, _ in .delivered }
        try await running(forwarder, writer) {
            // Settled once the cursor says so: the sink's acceptance comes just before the settle.
            #expect(await advance { sink.snapshot.accepted.count == 1201 && (try? cursor()) == 1201 })
        }
        #expect(sink.snapshot.accepted == Array(1...1201))
        #expect(sink.snapshot.attempts.map(\.count) == [500, 500, 201])
    }

    @Test func lingersForMoreEventsBeforeSendingASmallBatch() async throws {
        let (forwarder, sink, writer) = try await rig(3, linger: .seconds(5)) { _, _ in .delivered }
        try await running(forwarder, writer) {
            #expect(await eventually { clock.isSleeping(until: .seconds(5)) })
            await clock.advance(by: .seconds(4))
            #expect(clock.isSleeping(until: .seconds(5)))
            #expect(sink.snapshot.attempts.isEmpty, "a batch smaller than max_events waits for linger")
            #expect(await advance { sink.snapshot.accepted.count == 4 })
        }
    }

    /// Events appended during the linger join the small batch up to `max_events`, in order;
    /// the rest go in the next batches.
    @Test func aLingeringBatchIsToppedUpWithWhatCameMeanwhile() async throws {
        let (forwarder, sink, writer) = try await rig(3, linger: .seconds(5), maxEvents: 10) { _, _ in .delivered }
        try await running(forwarder, writer) {
            #expect(await eventually { clock.isSleeping(until: .seconds(5)) }, "the first claim is lingering")
            await clock.advance(by: .seconds(1))
            try await writer.append((0..<20).map { event(.productionCompleted, $0) })
            #expect(await advance { sink.snapshot.accepted.count == 24 })
        }
        #expect(sink.snapshot.accepted == Array(1...24))
        #expect(sink.snapshot.attempts.map(\.count) == [10, 10, 4])
    }

    /// The next batch is claimed while one is being delivered: events appended while that
    /// delivery is retried (after the claim) still go, in order, each once.
    @Test func eventsAppendedWhileABatchIsRetriedFollowIt() async throws {
        let (forwarder, sink, writer) = try await rig(3, maxEvents: 10) { attempt, _ in
            attempt == 0 ? .retry(.http_5xx, retryAfter: .seconds(2)) : .delivered
        }
        try await running(forwarder, writer) {
            // Waiting out the retry: the claim beside the delivery was started before it.
            #expect(await eventually { clock.isSleeping(until: .seconds(2)) })
            try await writer.append((0..<20).map { event(.productionCompleted, $0) })
            #expect(await advance { sink.snapshot.accepted.count == 24 })
        }
        #expect(sink.snapshot.accepted == Array(1...24))
        #expect(sink.snapshot.attempts.map(\.count) == [4, 4, 10, 10])
    }

    @Test func isolatesARejectedEventByBisectionAndDeliversTheRest() async throws {
        let (forwarder, sink, writer) = try await rig(99) { _, batch in
            batch.contains(37) ? .rejected(status: 422, body: "bad quantity") : .delivered
        }
        try await running(forwarder, writer) {
            #expect(await advance { sink.snapshot.accepted.count == 99 })
        }
        #expect(sink.snapshot.accepted.sorted() == Array(1...100).filter { $0 != 37 })
        let dead = try OutboxDatabase.openExisting(options(dir)).deadEvents(sink: "mw")
        #expect(dead.map(\.sequence) == [37])
        #expect(dead.first?.status == 422)
        #expect(sink.snapshot.attempts.count <= 2 * 7 + 1, "bisection: about 2 log2(n) attempts, not one per event")
    }

    @Test func halvesOn413AndDeadLettersASingleEventStillTooLarge() async throws {
        let (forwarder, sink, writer) = try await rig(40) { _, batch in
            batch.contains(10) ? .tooLarge : (batch.count > 8 ? .tooLarge : .delivered)
        }
        try await running(forwarder, writer) {
            #expect(await advance { sink.snapshot.accepted.count == 40 })
        }
        #expect(sink.snapshot.accepted.sorted() == Array(1...41).filter { $0 != 10 })
        #expect(try OutboxDatabase.openExisting(options(dir)).deadEvents(sink: "mw").map(\.status) == [413])
    }

    @Test func waitsWhatRetryAfterSays() async throws {
        let (forwarder, sink, writer) = try await rig(5) { attempt, _ in
            attempt == 0 ? .retry(.http_429, retryAfter: .seconds(30)) : .delivered
        }
        try await running(forwarder, writer) {
            #expect(await eventually { clock.isSleeping(until: .seconds(30)) }, "the first attempt, at 0 s, waits")
            await clock.advance(by: .seconds(29))
            #expect(clock.isSleeping(until: .seconds(30)))
            #expect(sink.snapshot.attempts.count == 1, "no second attempt before Retry-After has passed")
            #expect(sink.snapshot.probes == 0, "a sink that answers is not probed")
            #expect(await advance { sink.snapshot.accepted.count == 6 })
        }
    }

    @Test func neverDeadLettersOnAuthFailuresAndIsNotReadyMeanwhile() async throws {
        let (forwarder, sink, writer) = try await rig(5) { attempt, _ in
            attempt < 4 ? .misconfigured(status: [401, 403, 404, 401][attempt], body: "no") : .delivered
        }
        try await running(forwarder, writer) {
            #expect(await advance { sink.snapshot.attempts.count >= 2 })
            #expect(forwarder.health.snapshot.misconfigured != nil)
            #expect(await advance { sink.snapshot.accepted.count == 6 })
            #expect(forwarder.health.snapshot.misconfigured == nil, "ready again once the sink accepts")
        }
        #expect(try OutboxDatabase.openExisting(options(dir)).deadEvents(sink: "mw").isEmpty)
    }

    @Test func anUnreachableSinkIsProbedAndRetriedAsSoonAsItAnswers() async throws {
        // A sink that refuses connections until it is up; the backoff alone would wait a minute.
        let down = Mutex(true)
        let retry = SinkConfig.Retry(initial: .seconds(60), max: .seconds(60), multiplier: 2)
        // Full jitter can draw a wait shorter than three probes; a seed whose first wait is long
        // keeps a second attempt out of the window where only probes may happen.
        let seed = (UInt64(0)...).first { seed in
            var random = FastRandom(seed: seed)
            return RetryPolicy(retry).delay(attempt: 1, using: &random) >= .seconds(50)
        }!
        let (forwarder, sink, writer) = try await rig(5, retry: retry, jitterSeed: seed) { _, _ in
            down.withLock { $0 } ? .retry(.connect, retryAfter: nil) : .delivered
        }
        try await running(forwarder, writer) {
            #expect(await advance { sink.snapshot.attempts.count == 1 })
            #expect(await advance { sink.snapshot.probes >= 3 }, "probed every probe interval while backing off")
            #expect(sink.snapshot.attempts.count == 1, "a probe is not a batch")
            down.withLock { $0 = false }
            sink.log.withLock { $0.reachable = true }
            let before = clock.now
            #expect(await advance(by: .milliseconds(50)) { sink.snapshot.accepted.count == 6 })
            #expect(
                before.duration(to: clock.now) <= .seconds(1),
                "delivered within a second of the sink answering, not after the 60 s backoff")
        }
    }

    @Test func aSinkThatAnswers5xxKeepsItsBackoffAndIsNotProbed() async throws {
        let retry = SinkConfig.Retry(initial: .seconds(20), max: .seconds(20), multiplier: 2)
        let (forwarder, sink, writer) = try await rig(5, retry: retry) { attempt, _ in
            attempt < 3 ? .retry(.http_5xx, retryAfter: nil) : .delivered
        }
        try await running(forwarder, writer) {
            #expect(await advance(by: .seconds(1)) { sink.snapshot.accepted.count == 6 })
        }
        #expect(sink.snapshot.probes == 0)
    }

    @Test func survivesFailingClaimsAndSettlementsWithoutResendingABatch() async throws {
        let (forwarder, sink, writer) = try await rig(10) { _, _ in .delivered }
        faults.fail(.claim, times: 3, code: .busy)
        faults.fail(.settle, times: 2, code: .full)
        try await running(forwarder, writer) {
            #expect(await advance { sink.snapshot.accepted.count == 11 })
            #expect(await advance { (try? cursor()) == 11 })
            // The settlement commits just before the forwarder notes its recovery: wait for both.
            #expect(
                await advance { forwarder.health.snapshot.outboxError == nil }, "healthy again once the outbox answers")
        }
        #expect(
            sink.snapshot.attempts.count == 1, "a settlement that failed is retried on its own, not by sending again")
    }

    /// A graceful stop that comes while the sink takes a batch still records that batch (the
    /// settlement is not dropped on its way to the writer's thread) and sends nothing more: after
    /// a restart the sink is not sent it again.
    @Test func aStopDuringADeliveryStillRecordsIt() async throws {
        let (_, _, writer) = try await rig(1200) { _, _ in .delivered }
        let sink = AnswersOnStopSink()
        let forwarder = Forwarder(
            config: SinkConfig(name: "mw", kind: .http(.init(url: "http://127.0.0.1:1/"))), sink: sink, writer: writer,
            logger: Logger(label: "test"), clock: clock)
        try await running(forwarder, writer) {
            #expect(await eventually { sink.taken.withLock { $0 } == 500 })
        }
        #expect(sink.accepted.withLock { $0 } == Array(1...500))
        #expect(try cursor() == 500)
    }

    /// A stop while the sink takes a batch, which then reports only its lead acknowledged (a
    /// Kafka run of delivery reports): the lead is settled, the rest stays pending.
    @Test func aStopDuringADeliverySettlesTheLeadTheSinkReportsDelivered() async throws {
        let (_, _, writer) = try await rig(1200) { _, _ in .delivered }
        let sink = AnswersOnStopSink(lead: 200)
        let forwarder = Forwarder(
            config: SinkConfig(name: "mw", kind: .http(.init(url: "http://127.0.0.1:1/"))), sink: sink, writer: writer,
            logger: Logger(label: "test"), clock: clock)
        try await running(forwarder, writer) {
            #expect(await eventually { sink.taken.withLock { $0 } == 500 })
        }
        #expect(sink.accepted.withLock { $0 } == Array(1...200))
        #expect(try cursor() == 200)
    }

    /// A stop while the forwarder waits out a retry still settles the lead the sink reported
    /// delivered before it failed.
    @Test func aStopDuringABackoffSettlesTheLeadTheSinkReportedDelivered() async throws {
        let (forwarder, sink, writer) = try await rig(1200, maxEvents: 500) { attempt, _ in
            attempt == 0 ? .partlyDelivered(200, rest: .retry(.http_5xx, retryAfter: .seconds(3600))) : .delivered
        }
        try await running(forwarder, writer) {
            #expect(await eventually { clock.isSleeping(until: .seconds(3600)) })
        }
        #expect(sink.snapshot.attempts.count == 1)
        #expect(try cursor() == 200)
    }

    /// Batch N is settled while N+1 is delivered; a settlement that fails there is retried alone:
    /// nothing is sent twice and the cursor ends at the last event.
    @Test func aSettlementFailingBesideTheNextDeliveryIsRetriedAloneAndNothingIsSentTwice() async throws {
        let (forwarder, sink, writer) = try await rig(1200, maxEvents: 500) { _, _ in .delivered }
        faults.fail(.settle, times: 2, code: .full)
        try await running(forwarder, writer) {
            #expect(await advance { (try? cursor()) == 1201 })
        }
        #expect(sink.snapshot.attempts.map(\.count) == [500, 500, 201])
        #expect(sink.snapshot.accepted == Array(1...1201))
    }

    /// A settlement that keeps failing does not hold a stop: the wait between its attempts ends
    /// (the test clock never advances, so no backoff is waited out), and the batch stays pending
    /// (sent again after the restart, same ids).
    @Test func aStopIsNotHeldByASettlementThatKeepsFailing() async throws {
        let (forwarder, sink, writer) = try await rig(3) { _, _ in .delivered }
        faults.fail(.settle, times: 1000)
        let group = ServiceGroup(services: [forwarder], logger: Logger(label: "test"))
        let stopped = Mutex(false)
        Task {
            try await group.run()
            stopped.withLock { $0 = true }
        }
        #expect(await eventually { sink.snapshot.accepted.count == 4 })
        await group.triggerGracefulShutdown()
        // Not awaited: a stop that hangs fails here instead of hanging the suite.
        #expect(await eventually(timeout: .seconds(10)) { stopped.withLock { $0 } })
        #expect(try cursor() == 0)
        if stopped.withLock({ $0 }) { await writer.close() }
    }

    @Test func aFailingSettlementShowsInReadiness() async throws {
        let (forwarder, sink, writer) = try await rig(3) { _, _ in .delivered }
        faults.fail(.settle, times: 1000)
        let health = AgentHealth(report: writer.report)
        health.add(forwarder.health)
        try await running(forwarder, writer) {
            #expect(await advance { sink.snapshot.accepted.count == 4 })
            #expect(await advance { !health.readiness().ready })
            #expect(health.readiness().reasons.contains { $0.contains("sink mw cannot read or settle the outbox") })
            faults.fail(.settle, times: 0)
            #expect(await advance(by: .seconds(1)) { health.readiness().ready })
        }
    }
}
