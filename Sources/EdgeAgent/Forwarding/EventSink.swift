import EdgeAgentCore

/// A destination for events. A sink sends; the forwarder owns ordering, retries and settlement.
public protocol EventSink: Sendable {
    /// Sends `events` (in sequence order) as one attempt.
    func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome
    /// Sends `events` of a batch from `origin`: what a sink that keeps a cursor of its own
    /// (Kafka's `exactly_once`) needs to know of them.
    func deliver(_ events: [StoredEvent], from origin: BatchOrigin) async -> DeliveryOutcome
    func shutdown() async
    /// A cheap check that the destination accepts connections again (a TCP connect, no
    /// batch), asked while the forwarder backs off after a connection failure.
    func probe() async -> Bool
}

extension EventSink {
    /// A sink with no cursor of its own sends every batch alike.
    public func deliver(_ events: [StoredEvent], from origin: BatchOrigin) async -> DeliveryOutcome {
        await deliver(events)
    }

    /// A sink with no cheap check just waits out its backoff.
    public func probe() async -> Bool { false }
}

/// Where a batch comes from.
public struct BatchOrigin: Sendable, Equatable {
    /// The outbox's identity (`OpenReport.outboxID`): a sequence names an event only within it.
    public var outbox: String
    /// Events an operator queued again (`outbox dead retry`, `outbox replay`): at or below the
    /// sink's cursor, and to be sent whatever the sink counts as sent.
    public var requeued: Bool

    public init(outbox: String, requeued: Bool) {
        (self.outbox, self.requeued) = (outbox, requeued)
    }
}
