/// A batch a forwarder claimed from the outbox for its sink, and how settling it moves the cursor.
public struct Claim: Sendable, Equatable {
    public var events: [StoredEvent]
    /// Events re-queued by `dead retry` or `replay`, not the cursor's next batch.
    public var requeued: Bool
    /// The sink's cursor when the batch was claimed.
    public var cursor: Int64
    /// Where the cursor may move once this batch is settled: past events the sink's
    /// `types` filter skips, too.
    public var through: Int64

    public init(events: [StoredEvent], requeued: Bool, cursor: Int64 = 0, through: Int64) {
        self.events = events
        self.requeued = requeued
        self.cursor = cursor
        self.through = through
    }
}

/// A dead letter: an event the sink rejected on its own.
public struct DeadLetter: Sendable, Equatable {
    public var sequence: Int64
    public var status: Int
    public var response: String
    public init(sequence: Int64, status: Int, response: String) {
        self.sequence = sequence
        self.status = status
        self.response = response
    }
}
