import EdgeAgentCore
import Logging
import ServiceLifecycle

/// One per sink: claim a batch in order, deliver it, settle it; backs off while the sink fails
/// and drains the backlog by itself when it comes back (SPEC 5).
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
    private let policy: RetryPolicy
    /// How often an idle forwarder looks for work the CLI queued (`dead retry`, `replay`); it
    /// wakes only itself (the writer's doorbell wakes all forwarders on an append).
    private let idlePoll: Duration
    /// Half a second: a sink that comes back gets its first batch well within a second.
    private let probeInterval: Duration
    /// Fixes the backoff's jitter (tests); each delivery draws a fresh sequence otherwise.
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
        self.policy = RetryPolicy(config.retry)
        self.idlePoll = idlePoll
        self.probeInterval = probeInterval
        self.jitterSeed = jitterSeed
        self.health = SinkHealth(name: config.name)
    }

    public func run() async throws {
        let (bell, own) = writer.doorbell.subscribe()
        do {
            try await forwardUntilShutdown(bell, own: own)
        } catch {
            await sink.shutdown()  // cancelled, not shut down gracefully: the client still closes
            throw error
        }
        await sink.shutdown()
    }

    private func forwardUntilShutdown(_ bell: AsyncStream<Void>, own: AsyncStream<Void>.Continuation) async throws {
        try await untilGracefulShutdown {
            let options = self.writer.options
            // Opening reads the schema: on the reader's own thread, and retried like any outbox failure.
            let reader = try await self.persistently {
                try await Confined(opening: { try OutboxDatabase.openExisting(options) })
            }
            do {
                try await self.forward(bell, own: own, reader: reader)
            } catch {
                await reader.shutdown()
                throw error
            }
            await reader.shutdown()
        }
    }

    private func forward(
        _ bell: AsyncStream<Void>, own: AsyncStream<Void>.Continuation, reader: Confined<OutboxDatabase>
    ) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            let poll = idlePoll, clock = clock
            group.addTask {
                while !Task.isCancelled {
                    try await clock.sleep(for: poll)
                    own.yield()
                }
            }
            try await loop(bell, reader: reader)
            group.cancelAll()
        }
    }

    private func loop(_ bell: AsyncStream<Void>, reader: Confined<OutboxDatabase>) async throws {
        var wake = bell.makeAsyncIterator()
        var limiter = config.rateLimit.map { RateLimiter(rate: $0) }
        let name = config.name, filter = config.types
        let maxEvents = config.batch.maxEvents, maxBytes = Int(config.batch.maxBytes)
        @Sendable func claim(after: Int64 = 0, holding: [StoredEvent] = []) async throws -> Claim {
            let (count, bytes) = (holding.count, OutboxDatabase.batchBytes(holding))
            return try await persistently {
                try await reader.run {
                    try $0.claim(
                        sink: name, filter: filter, maxEvents: maxEvents - count, maxBytes: maxBytes, after: after,
                        holding: bytes)
                }
            }
        }
        @Sendable func settle(_ claim: Claim, delivered: Int, dead: [DeadLetter]) async throws {
            try await persistently {
                try await self.writer.settle(sink: name, claim: claim, delivered: delivered, dead: dead)
            }
        }
        var next: Claim?
        while !Task.isCancelled {
            var batch: Claim
            if let claimed = next { batch = claimed } else { batch = try await claim() }
            next = nil
            if !batch.requeued, batch.events.count < maxEvents, let last = batch.events.last,
                config.batch.linger > .zero
            {
                // Topped up with what came during the linger: the batch's events are not read again.
                try await clock.sleep(for: config.batch.linger)
                let more = try await claim(after: last.sequence, holding: batch.events)
                if !more.requeued {
                    batch.events += more.events
                    batch.through = more.through
                }
            }
            if batch.events.isEmpty {
                if !batch.requeued, batch.through > batch.cursor { try await settle(batch, delivered: 0, dead: []) }
                guard await wake.next() != nil else { return }
                continue
            }
            // Delivered but not yet recorded: the settlement is retried on its own, so a failing
            // outbox does not make the sink receive the batch again. The next batch is claimed
            // (on the reader's thread) while this one is delivered and settled: it starts after
            // this batch, so it cannot hold any of it, and what is appended meanwhile rings the
            // doorbell for the claim after it. After re-queued events the next claim waits for
            // the settlement, which is what takes them off the queue.
            let upcoming = batch.requeued ? nil : Task { [through = batch.through] in try await claim(after: through) }
            defer { upcoming?.cancel() }  // when the delivery or settlement ends the loop
            let origin = BatchOrigin(outbox: writer.report.outboxID, requeued: batch.requeued)
            let (delivered, dead) = try await deliver(batch.events, from: origin, limiter: &limiter)
            try await settle(batch, delivered: delivered, dead: dead)
            next = try await upcoming?.value
            health.update { $0.delivered += delivered }
        }
    }

    /// Runs an outbox call until it succeeds or the forwarder stops.
    private func persistently<R>(_ body: () async throws -> R) async throws -> R {
        var attempt = 0
        var random = FastRandom()
        while true {
            do {
                let result = try await body()
                if attempt > 0 { outboxRecovered() }
                return result
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                attempt += 1
                outboxFailed(error)
                try await clock.sleep(for: policy.delay(attempt: attempt, using: &random))
            }
        }
    }

    /// Delivers a claimed batch, splitting it to isolate rejected events; returns what was
    /// delivered and what is dead-lettered. Retries passing faults until they pass (or shutdown).
    private func deliver(_ events: [StoredEvent], from origin: BatchOrigin, limiter: inout RateLimiter?) async throws
        -> (Int, [DeadLetter])
    {
        var delivered = 0
        var dead: [DeadLetter] = []
        var parts: [ArraySlice<StoredEvent>] = [events[...]]
        var random = jitterSeed.map(FastRandom.init(seed:)) ?? FastRandom()
        while let part = parts.popLast() {
            var attempt = 0
            while true {
                if let wait = limiter?.take(part.count, now: .now), wait > .zero { try await clock.sleep(for: wait) }
                let outcome = await sink.deliver(Array(part), from: origin)
                switch outcome {
                case .delivered:
                    delivered += part.count
                    Telemetry.delivered(sink: config.name, part, at: .now())
                    recovered()
                case let .rejected(status, body) where part.count == 1:
                    deadLetter(part.first!, status: status, body: body, into: &dead)
                case .tooLarge where part.count == 1:
                    deadLetter(
                        part.first!, status: 413, body: "a single event is larger than the receiver accepts",
                        into: &dead)
                case .rejected, .tooLarge:
                    let middle = part.startIndex + part.count / 2
                    parts.append(part[middle...])
                    parts.append(part[..<middle])
                    failed(.http_4xx)
                case let .retry(reason, retryAfter):
                    // A wait the stop ended is no failure of the sink: the batch stays pending.
                    if Task.isCancelled { throw CancellationError() }
                    attempt += 1
                    failed(reason)
                    // Only an unreachable sink is probed: one that answers 5xx or 429 is up but
                    // struggling, and keeps its backoff.
                    try await backOff(
                        policy.delay(attempt: attempt, retryAfter: retryAfter, using: &random),
                        probing: reason == .connect && retryAfter == nil)
                    continue
                case let .misconfigured(status, body):
                    attempt += 1
                    misconfigured(status: status, body: body)
                    try await clock.sleep(for: policy.delay(attempt: attempt, using: &random))
                    continue
                }
                break
            }
        }
        return (delivered, dead)
    }

    /// Waits `delay`; while `probing`, asks the sink every `probeInterval` whether it answers
    /// again and ends the wait early when it does.
    private func backOff(_ delay: Duration, probing: Bool) async throws {
        guard probing, probeInterval < delay else { return try await clock.sleep(for: delay) }
        var remaining = delay
        while remaining > .zero {
            let step = min(probeInterval, remaining)
            try await clock.sleep(for: step)
            remaining -= step
            if remaining > .zero, await sink.probe() { return }
        }
    }

    private func deadLetter(_ event: StoredEvent, status: Int, body: String, into dead: inout [DeadLetter]) {
        dead.append(DeadLetter(sequence: event.sequence, status: status, response: body))
        failed(.rejected)
        logger.error(
            "Event rejected by the sink; dead-lettered.",
            metadata: [
                "sequence": "\(event.sequence)", "id": "\(event.id)", "type": "\(event.type)", "status": "\(status)",
            ])
    }

    private func failed(_ reason: FailureReason) {
        let first = health.snapshot.failing == nil
        Telemetry.failed(sink: config.name, reason: reason)
        health.update {
            if reason.isPassing { $0.failing = reason }
            ($0.lastError, $0.lastErrorAt) = ("\(reason)", .now())
        }
        if first, reason.isPassing {
            logger.warning("Sink is failing; retrying with backoff.", metadata: ["reason": "\(reason)"])
        }
    }

    private func misconfigured(status: Int, body: String) {
        let first = health.snapshot.misconfigured == nil
        Telemetry.failed(sink: config.name, reason: .auth)
        health.update {
            $0.failing = .auth
            $0.misconfigured = "HTTP \(status)"
            ($0.lastError, $0.lastErrorAt) = ("refused: HTTP \(status)", .now())
        }
        if first {
            logger.error(
                "Sink refuses the agent: check its URL and credentials. Retrying, nothing is dead-lettered.",
                metadata: ["status": "\(status)", "response": "\(body.prefix(200))"])
        }
    }

    private func outboxFailed(_ error: any Error) {
        let first = health.snapshot.outboxError == nil
        Telemetry.failed(sink: config.name, reason: .outbox)
        health.update {
            $0.outboxError = "\(error)"
            ($0.lastError, $0.lastErrorAt) = ("outbox: \(error)", .now())
        }
        if first {
            logger.error("Forwarder cannot use the outbox; retrying with backoff.", metadata: ["error": "\(error)"])
        }
    }

    private func outboxRecovered() {
        health.update { $0.outboxError = nil }
        logger.notice("Forwarder uses the outbox again.")
    }

    private func recovered() {
        let was = health.snapshot
        guard was.failing != nil || was.misconfigured != nil else { return }
        health.update {
            $0.failing = nil
            $0.misconfigured = nil
        }
        logger.notice("Sink is delivering again.")
    }
}
