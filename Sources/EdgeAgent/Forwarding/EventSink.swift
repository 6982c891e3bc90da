/// A destination for events. A sink sends; the forwarder owns ordering, retries and settlement.
public protocol EventSink: Sendable {
    /// Sends `events` (in sequence order) as one attempt.
    func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome
    func shutdown() async
}
