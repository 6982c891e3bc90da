/// A business event as a rule (or the outbox itself) decides it; the outbox gives it id, sequence and envelope.
public struct Event: Sendable, Equatable {
    public var type: EventType
    public var subject: String
    /// When it happened at the source (PLC sample time, historian row time).
    public var time: Timestamp
    public var data: JSONValue

    public init(type: EventType, subject: String, time: Timestamp, data: JSONValue) {
        self.type = type
        self.subject = subject
        self.time = time
        self.data = data
    }
}

/// An event as the outbox holds it: the CloudEvents JSON was built once, at append.
public struct StoredEvent: Sendable, Equatable {
    public var sequence: Int64
    public var id: String
    public var type: String
    public var time: Timestamp
    /// The envelope's JSON. A claimed batch's bodies are slices of one text (one allocation
    /// per batch, not one per event); the slice keeps that text alive.
    public var body: Substring

    public init(sequence: Int64, id: String, type: String, time: Timestamp, body: Substring) {
        self.sequence = sequence
        self.id = id
        self.type = type
        self.time = time
        self.body = body
    }
}
