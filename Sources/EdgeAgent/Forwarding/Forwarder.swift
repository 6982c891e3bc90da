import EdgeAgentCore
import Logging
import ServiceLifecycle

/// One per sink: claim a batch in order, deliver it, settle it; backs off while the sink fails
/// and drains the backlog by itself when it comes back (SPEC 5). The rules are
/// `ForwarderStateMachine`'s; this performs its steps on the outbox, the sink and the clock.
///
/// A forwarder survives its own failures: a claim or settlement that fails (SQLITE_BUSY, a full
/// disk, an I/O error) is logged once, counted as `edge_sink_failures_total{reason="outbox"}`,
/// shown in `/readyz`, and retried with the sink's backoff; acquisition and the other sinks go on.
/// While the sink cannot be reached it is probed (a TCP connect, no batch) every `probeInterval`,
/// and the batch goes again as soon as it answers: recovery does not wait for the backoff slot.
public final class Forwarder: Service {
    public let config: SinkConfig
    public let health: SinkHealth
    private let sink: any EventSink
    private let writer: OutboxWriter
    private let logger: Logger
    private let clock: any Clock<Duration>
    /// How often an idle forwarder looks for work the CLI queued (`dead retry`, `replay`); it
    /// wakes only itself (the writer's doorbell wakes all forwarders on an append).
    private let idlePoll: Duration
    /// Half a second: a sink that comes back gets its first batch well within a second.
    private let probeInterval: Duration
    /// Fixes the backoff's jitter (tests); a fresh sequence otherwise.
    private let jitterSeed: UInt64?

    public init(
        config: SinkConfig, sink: any EventSink, writer: OutboxWriter, logger: Logger,
        clock: any Clock<Duration> = ContinuousClock(), idlePoll: Duration = .seconds(1),
        probeInterval: Duration = .milliseconds(500), jitterSeed: UInt64? = nil
    ) {
        self.config = config
        self.sink = sink
        self.writer = writer
        var logger = logger
        logger[metadataKey: "sink"] = "\(config.name)"
        self.logger = logger
        self.clock = clock
        self.idlePoll = idlePoll
        self.probeInterval = probeInterval
        self.jitterSeed = jitterSeed
        self.health = SinkHealth(name: config.name)
    }

    public func run() async throws {
        let (bell, own) = writer.doorbell.subscribe()
        do {
            try await untilGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    let poll = self.idlePoll, clock = self.clock
                    group.addTask {
                        while !Task.isCancelled {
                            try await clock.sleep(for: poll)
                            own.yield()
                        }
                    }
                    try await self.drive(bell)
                }
            }
        } catch {
            await sink.shutdown()  // cancelled, not shut down gracefully: the client still closes
            throw error
        }
        await sink.shutdown()
    }

    /// Performs what the machine asks until a stop; ends by throwing `CancellationError`.
    private func drive(_ bell: AsyncStream<Void>) async throws {
        typealias Machine = ForwarderStateMachine
        var machine = Machine(
            .init(config, probeInterval: probeInterval), random: jitterSeed.map(FastRandom.init(seed:)) ?? FastRandom())
        let time = Self.time(on: clock)
        var wake = bell.makeAsyncIterator()
        var reader: Confined<OutboxDatabase>?
        // Beside a delivery the writer's and the reader's threads work without a task here: the
        // settlement of the batch before and the claim of the batch after are started on them,
        // and their results taken when the machine asks for them.
        var ahead: Pending<Claim>?
        var beside: Pending<Void>?
        // The batch last settled beside a delivery: the machine lets go of it when that delivery
        // answers; kept until the claim beside the next delivery frees it on the reader's thread.
        var spent: Claim?
        let name = config.name, filter = config.types
        let maxEvents = config.batch.maxEvents, maxBytes = Int(config.batch.maxBytes)
        @Sendable func settle(_ settlement: Machine.Settlement) -> Pending<Void> {
            writer.settle(sink: name, claim: settlement.claim, delivered: settlement.delivered, dead: settlement.dead)
        }
        @Sendable func claim(_ outbox: OutboxDatabase, after: Int64, holding: [StoredEvent] = []) throws -> Claim {
            try outbox.claim(
                sink: name, filter: filter, maxEvents: maxEvents - holding.count, maxBytes: maxBytes, after: after,
                holding: OutboxDatabase.batchBytes(holding))
        }
        var action = machine.receive(.start, at: time.now())
        do {
            while true {
                perform(action.effects)
                let event: Machine.Event
                switch action.next {
                case .openOutbox:
                    // Opening reads the schema: on the reader's own thread.
                    event = try await outbox {
                        reader = try await Confined(opening: { [options = writer.options] in
                            try OutboxDatabase.openExisting(options)
                        })
                        return .opened
                    }
                case let .claim(after, holding):
                    // Started like the claim beside a delivery: a stop that comes before the
                    // reader's thread takes it still lets the machine settle what it holds.
                    event = try await outbox {
                        .claimed(try await reader!.start { try claim($0, after: after, holding: holding) }.value)
                    }
                case let .deliver(events, claimAheadAfter, requeued, settling):
                    // Recorded to its end even if a stop comes (`OutboxWriter.settle`); the
                    // machine takes its result before anything else follows the delivery.
                    if let settling { beside = settle(settling) }
                    if let after = claimAheadAfter, let reader {
                        ahead = reader.start { [spent] in
                            defer { withExtendedLifetime(spent) {} }
                            return try claim($0, after: after)
                        }
                        spent = settling?.claim
                    }
                    let origin = BatchOrigin(outbox: writer.report.outboxID, requeued: requeued)
                    event = .delivered(await sink.deliver(Array(events), from: origin))
                case .awaitClaimAhead:
                    let claimed = ahead!
                    ahead = nil
                    event = try await outbox { .claimed(try await claimed.value) }
                case .awaitSettlement:
                    let settled = beside!
                    beside = nil
                    event = try await outbox {
                        try await settled.value
                        return .settled
                    }
                case let .settle(settlement):
                    // Delivered but not yet recorded: the settlement is retried on its own, so a
                    // failing outbox does not make the sink receive the batch again.
                    event = try await outbox {
                        try await settle(settlement).value
                        return .settled
                    }
                case let .sleep(until):
                    // A stop ends the wait; the machine is told below, and may still settle.
                    try? await time.sleep(until)
                    event = .timerFired
                case .probe:
                    event = .probed(answers: await sink.probe())
                case .waitForDoorbell:
                    spent = nil
                    guard await wake.next() != nil else { throw CancellationError() }
                    event = .doorbellRang
                case .none, .stop:
                    throw CancellationError()
                }
                if Task.isCancelled {
                    let stop = machine.receive(.stop, at: time.now())
                    switch stop.next {
                    case .stop:
                        perform(stop.effects)
                        throw CancellationError()
                    case .none:
                        perform(stop.effects)
                    default:
                        // What the sink accepted, settled before stopping: the wait it ended is over.
                        action = stop
                        continue
                    }
                }
                action = machine.receive(event, at: time.now())
            }
        } catch {
            await reader?.shutdown()
            throw error
        }
    }

    /// The event an outbox step ends with: what it returned, or its failure (a stop's ends the loop).
    private func outbox(_ step: () async throws -> ForwarderStateMachine.Event) async throws
        -> ForwarderStateMachine.Event
    {
        do {
            return try await step()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return .outboxFailed("\(error)")
        }
    }

    /// The machine's time: how long since the forwarder started, on `clock`, and a sleep until such a time.
    private static func time<C: Clock<Duration>>(on clock: C) -> (
        now: @Sendable () -> Duration, sleep: @Sendable (Duration) async throws -> Void
    ) {
        let start = clock.now
        return (
            { start.duration(to: clock.now) }, { try await clock.sleep(until: start.advanced(by: $0), tolerance: nil) }
        )
    }

    private func perform(_ effects: [ForwarderStateMachine.Effect]) {
        for effect in effects {
            switch effect {
            case let .count(reason): Telemetry.failed(sink: config.name, reason: reason)
            case let .countDelivered(events): Telemetry.delivered(sink: config.name, events, at: .now())
            case let .health(change): health.apply(change)
            case let .log(entry): log(entry)
            }
        }
    }

    private func log(_ entry: ForwarderStateMachine.Log) {
        switch entry {
        case let .sinkFailing(reason):
            logger.warning("Sink is failing; retrying with backoff.", metadata: ["reason": "\(reason)"])
        case .sinkRecovered:
            logger.notice("Sink is delivering again.")
        case let .deadLettered(event, status):
            logger.error(
                "Event rejected by the sink; dead-lettered.",
                metadata: [
                    "sequence": "\(event.sequence)", "id": "\(event.id)", "type": "\(event.type)",
                    "status": "\(status)",
                ])
        case let .misconfigured(status, body):
            logger.error(
                "Sink refuses the agent: check its URL and credentials. Retrying, nothing is dead-lettered.",
                metadata: ["status": "\(status)", "response": "\(body.prefix(200))"])
        case let .outboxFailing(error):
            logger.error("Forwarder cannot use the outbox; retrying with backoff.", metadata: ["error": "\(error)"])
        case .outboxRecovered:
            logger.notice("Forwarder uses the outbox again.")
        }
    }
}
