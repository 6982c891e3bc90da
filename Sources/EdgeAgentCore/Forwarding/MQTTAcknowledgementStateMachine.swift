/// The MQTT sink's acknowledgement policy: each event is published once and followed by the one
/// message (message id) that libmosquitto holds for it until the broker acknowledges it.
///
/// libmosquitto keeps every QoS 1 and 2 message until its PUBACK (PUBCOMP), whatever the
/// connection does, and sends the unacknowledged ones again itself after a reconnect, under the
/// same id. Publishing the event again would make a second copy that queues behind the first.
/// So a timeout or a lost connection ends an attempt but keeps the event's message: the next
/// attempt publishes only what has none, waits for the rest, and a late PUBACK of an earlier
/// attempt delivers its event. An id libmosquitto hands out again means its old message is gone
/// (ids wrap at 65,535): that event is published again. A batch is at most `maximumBatch`
/// events, so the ids of one batch never wrap.
///
/// | event | what follows |
/// |---|---|
/// | `attempt(sequences)` | the sequences to publish: those with no message held and none acknowledged |
/// | `published(sequence, id)` | the event waits for that message (nil: a status message) |
/// | `acknowledged(id, reason)` | its event is delivered (reason < 0x80) or refused; the attempt's decision |
/// | `ended(connected:)` | the attempt's decision, or `retry` (timeout, or connect when the connection is lost) |
///
/// A delivered attempt's events are forgotten (the forwarder settles them; a replay publishes
/// them anew), as is everything below an attempt's first sequence (settled: the forwarder goes
/// in order). A refused event is forgotten at the next attempt: the broker holds no copy of it.
public struct MQTTAcknowledgementStateMachine: Sendable {
    /// Events in one batch: the message ids of one batch (1 to 65,535) never wrap, with room
    /// for the status messages published beside them.
    public static let maximumBatch = 65_000

    public enum Decision: Sendable, Equatable {
        /// Some messages of the attempt are still unacknowledged.
        case wait
        case delivered
        /// The broker refused `sequence` (MQTT 5 reason code from 0x80).
        case rejected(sequence: Int64, reason: Int32)
        /// The attempt ends with messages unacknowledged; they stay held for the next one.
        case retry(FailureReason)
    }

    enum Message: Equatable {
        case held(id: Int32)
        case acknowledged
        case refused(reason: Int32)
    }

    private var messages: [Int64: Message] = [:]
    /// The event of each held message id.
    private var holders: [Int32: Int64] = [:]
    /// PUBACKs of ids no event holds yet (its `published` comes after the callback), or never
    /// will (the status message).
    private var early: [Int32: Int32] = [:]
    /// The attempt in hand (none between attempts) and how many of its events are not acknowledged yet.
    private var attempt: Set<Int64>?
    private var open = 0
    private var refusal: (sequence: Int64, reason: Int32)?

    public init() {}

    /// Starts an attempt over `sequences` (in order); returns those to publish.
    public mutating func attempt(_ sequences: [Int64]) -> [Int64] {
        early.removeAll()
        refusal = nil
        let first = sequences.first ?? .max
        messages = messages.filter { sequence, message in
            switch message {
            case .held: true
            case .acknowledged: sequence >= first
            case .refused: false
            }
        }
        attempt = Set(sequences)
        open = sequences.count { messages[$0] != .acknowledged }
        return sequences.filter { messages[$0] == nil }
    }

    /// libmosquitto holds message `id` for `sequence` now, or for no event (nil: the status).
    public mutating func published(_ sequence: Int64?, id: Int32) {
        if let previous = holders.removeValue(forKey: id), previous != sequence, messages[previous] == .held(id: id) {
            messages[previous] = nil  // libmosquitto replaced that message
        }
        guard let sequence else { return }
        messages[sequence] = .held(id: id)
        holders[id] = sequence
        if let reason = early.removeValue(forKey: id) { _ = acknowledged(id: id, reason: reason) }
    }

    /// A PUBACK (PUBCOMP at QoS 2) for message `id`; returns the attempt's decision, or nil
    /// when no event holds the message (yet, or ever: the status).
    public mutating func acknowledged(id: Int32, reason: Int32) -> Decision? {
        guard let sequence = holders.removeValue(forKey: id), messages[sequence] == .held(id: id) else {
            early[id] = reason
            return nil
        }
        let inAttempt = attempt?.contains(sequence) == true
        if reason >= 0x80 {
            messages[sequence] = .refused(reason: reason)
            if inAttempt, refusal == nil { refusal = (sequence, reason) }
        } else {
            messages[sequence] = .acknowledged
        }
        if inAttempt { open -= 1 }
        return decision
    }

    /// Events known (held, acknowledged or refused): at most a batch and what is still held.
    public var tracked: Int { messages.count }

    /// Whether a message no event holds (a status message) was acknowledged since the attempt began.
    public func acknowledged(id: Int32) -> Bool { early[id] != nil }

    /// The attempt's decision so far: `wait` until every event is acknowledged or one is refused
    /// (and between attempts).
    public var decision: Decision {
        guard attempt != nil else { return .wait }
        if let refusal { return .rejected(sequence: refusal.sequence, reason: refusal.reason) }
        return open == 0 ? .delivered : .wait
    }

    /// Ends the attempt (every PUBACK in, a refusal, the timeout, a lost connection, a stop).
    public mutating func ended(connected: Bool) -> Decision {
        var result = decision
        if result == .delivered {
            for sequence in attempt ?? [] { messages[sequence] = nil }
        } else if result == .wait {
            result = .retry(connected ? .timeout : .connect)
        }
        attempt = nil
        open = 0
        return result
    }
}
