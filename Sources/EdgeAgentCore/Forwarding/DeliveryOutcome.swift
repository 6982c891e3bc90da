/// What a sink says about one delivery attempt of a batch; the forwarder decides what follows.
public enum DeliveryOutcome: Sendable, Equatable {
    /// The whole batch is accepted.
    case delivered
    /// A passing fault: send the same batch again after backoff (or `retryAfter`).
    case retry(FailureReason, retryAfter: Duration?)
    /// The batch is too large for the receiver: halve it.
    case tooLarge
    /// The receiver rejects something in the batch: isolate it; a single rejected event is dead-lettered.
    case rejected(status: Int, body: String)
    /// The sink is misconfigured (401/403/404): retry with backoff, never dead-letter, not ready.
    case misconfigured(status: Int, body: String)
    /// Only the batch's leading `count` events are accepted (a Kafka run of successful delivery
    /// reports); `rest` is what holds for the others.
    indirect case partlyDelivered(Int, rest: DeliveryOutcome)
}

/// `edge_sink_failures_total{reason}` values (SPEC 7, and `outbox`: the forwarder could not
/// claim or settle).
public enum FailureReason: String, Sendable {
    case connect, timeout, http_4xx, http_429, http_5xx, auth, rejected, outbox

    /// A fault that passes by itself (the sink is down or busy), as opposed to one about the
    /// content (4xx, a dead letter) or the configuration (auth).
    public var isPassing: Bool { self == .connect || self == .timeout || self == .http_429 || self == .http_5xx }
}
