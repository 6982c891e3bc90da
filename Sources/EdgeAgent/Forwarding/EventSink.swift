import EdgeAgentCore

/// A destination for events. A sink sends; the forwarder owns ordering, retries and settlement.
public protocol EventSink: Sendable {
    /// Sends `events` (in sequence order) as one attempt.
    func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome
    func shutdown() async
    /// A cheap check that the destination accepts connections again (a TCP connect, no
    /// batch), asked while the forwarder backs off after a connection failure.
    func probe() async -> Bool
}

extension EventSink {
    /// A sink with no cheap check just waits out its backoff.
    public func probe() async -> Bool { false }
}
