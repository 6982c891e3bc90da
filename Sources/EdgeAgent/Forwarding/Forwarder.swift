import Logging
import ServiceLifecycle

/// One per sink: claim a batch in order, deliver it, settle it; backs off while the sink fails
/// and drains the backlog by itself when it comes back (SPEC 5).
public final class Forwarder: Service {
    public let config: SinkConfig
    public let health: SinkHealth
    private let sink: any EventSink
    private let writer: OutboxWriter
    private let reader: Confined<OutboxDatabase>
    private let logger: Logger
    private let clock: any Clock<Duration>
    private let policy: RetryPolicy
    /// How often an idle forwarder looks for work the CLI queued (`dead retry`, `replay`).
    private let idlePoll: Duration

    public init(config: SinkConfig, sink: any EventSink, writer: OutboxWriter, logger: Logger,
                clock: any Clock<Duration> = ContinuousClock(), idlePoll: Duration = .seconds(1)) throws {
        self.config = config
        self.sink = sink
        self.writer = writer
        self.reader = Confined(try OutboxDatabase.openExisting(writer.options))
        var logger = logger
        logger[metadataKey: "sink"] = "\(config.name)"
        self.logger = logger
        self.clock = clock
        self.policy = RetryPolicy(config.retry)
        self.idlePoll = idlePoll
        self.health = SinkHealth(name: config.name)
    }

    public func run() async throws {
        let bell = writer.doorbell.subscribe()
        do {
            try await untilGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    let ticker = self.writer.doorbell, poll = self.idlePoll, clock = self.clock
                    group.addTask {
                        while !Task.isCancelled {
                            try await clock.sleep(for: poll)
                            ticker.ring()
                        }
                    }
                    try await self.loop(bell)
                    group.cancelAll()
                }
            }
        } catch {
            await close()
            throw error
        }
        await close()
    }

    private func close() async {
        await sink.shutdown()
        await reader.shutdown()
    }

    private func loop(_ bell: AsyncStream<Void>) async throws {
        var wake = bell.makeAsyncIterator()
        var limiter = config.rateLimit.map { RateLimiter(rate: $0) }
        let name = config.name, filter = config.types
        let maxEvents = config.batch.maxEvents, maxBytes = Int(config.batch.maxBytes)
        while !Task.isCancelled {
            var claim = try await reader.run { try $0.claim(sink: name, filter: filter, maxEvents: maxEvents, maxBytes: maxBytes) }
            if !claim.requeued, claim.events.count < maxEvents, !claim.events.isEmpty, config.batch.linger > .zero {
                try await clock.sleep(for: config.batch.linger)
                claim = try await reader.run { try $0.claim(sink: name, filter: filter, maxEvents: maxEvents, maxBytes: maxBytes) }
            }
            if claim.events.isEmpty {
                if !claim.requeued, claim.through > claim.cursor { try await writer.settle(sink: name, claim: claim, delivered: 0, dead: []) }
                guard await wake.next() != nil else { return }
                continue
            }
            let (delivered, dead) = try await deliver(claim.events, limiter: &limiter)
            try await writer.settle(sink: name, claim: claim, delivered: delivered, dead: dead)
            health.update { $0.delivered += delivered }
        }
    }

    /// Delivers a claimed batch, splitting it to isolate rejected events; returns what was
    /// delivered and what is dead-lettered. Retries passing faults until they pass (or shutdown).
    private func deliver(_ events: [StoredEvent], limiter: inout RateLimiter?) async throws -> (Int, [DeadLetter]) {
        var delivered = 0
        var dead: [DeadLetter] = []
        var parts: [ArraySlice<StoredEvent>] = [events[...]]
        var random = FastRandom()
        while let part = parts.popLast() {
            var attempt = 0
            while true {
                if let wait = limiter?.take(part.count, now: .now), wait > .zero { try await clock.sleep(for: wait) }
                let outcome = await sink.deliver(Array(part))
                switch outcome {
                case .delivered:
                    delivered += part.count
                    Telemetry.delivered(sink: config.name, part, at: .now())
                    recovered()
                case let .rejected(status, body) where part.count == 1:
                    deadLetter(part.first!, status: status, body: body, into: &dead)
                case .tooLarge where part.count == 1:
                    deadLetter(part.first!, status: 413, body: "a single event is larger than the receiver accepts", into: &dead)
                case .rejected, .tooLarge:
                    let middle = part.startIndex + part.count / 2
                    parts.append(part[middle...])
                    parts.append(part[..<middle])
                    failed(.http_4xx)
                case let .retry(reason, retryAfter):
                    attempt += 1
                    failed(reason)
                    try await clock.sleep(for: policy.delay(attempt: attempt, retryAfter: retryAfter, using: &random))
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

    private func deadLetter(_ event: StoredEvent, status: Int, body: String, into dead: inout [DeadLetter]) {
        dead.append(DeadLetter(sequence: event.sequence, status: status, response: body))
        failed(.rejected)
        logger.error("Event rejected by the sink; dead-lettered.", metadata: [
            "sequence": "\(event.sequence)", "id": "\(event.id)", "type": "\(event.type)", "status": "\(status)",
        ])
    }

    private func failed(_ reason: FailureReason) {
        let first = health.snapshot.failing == nil
        Telemetry.failed(sink: config.name, reason: reason)
        if reason.isPassing { health.update { $0.failing = reason } }
        if first, reason.isPassing { logger.warning("Sink is failing; retrying with backoff.", metadata: ["reason": "\(reason)"]) }
    }

    private func misconfigured(status: Int, body: String) {
        let first = health.snapshot.misconfigured == nil
        Telemetry.failed(sink: config.name, reason: .auth)
        health.update {
            $0.failing = .auth
            $0.misconfigured = "HTTP \(status)"
        }
        if first {
            logger.error("Sink refuses the agent: check its URL and credentials. Retrying, nothing is dead-lettered.",
                         metadata: ["status": "\(status)", "response": "\(body.prefix(200))"])
        }
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
