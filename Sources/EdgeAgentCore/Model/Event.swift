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
    public var body: String

    public init(sequence: Int64, id: String, type: String, time: Timestamp, body: String) {
        self.sequence = sequence
        self.id = id
        self.type = type
        self.time = time
        self.body = body
    }
}
