/// The Kafka sink's policy with `exactly_once: true` (SPEC 5.4): each batch and a cursor record
/// (the sink, the batch's last sequence) go to Kafka in one transaction, and nothing Kafka has
/// committed is sent again.
///
/// The sink knows what Kafka committed only from a cursor record it read or a commit it saw
/// succeed. A new producer's `init_transactions` fences the previous one and ends its open
/// transaction (a crash mid-transaction is aborted), so the cursor is read after it, and read
/// again after every new producer: a failure whose outcome is unknown (a fatal error, an abort
/// that failed) is answered with a new producer, never with a guess. An attempt sends only what
/// is past the committed cursor; a batch wholly behind it is delivered without sending, which is
/// how the outbox's cursor catches up with Kafka's after a kill -9 between Kafka's commit and
/// the outbox's settlement.
///
/// A sequence names an event only within its outbox: a new outbox (SPEC 7) numbers from 1
/// again. A cursor record names its outbox, and one of another outbox counts as none.
///
/// Events an operator queued again (`outbox dead retry`, `outbox replay`) lie at or behind the
/// cursor: a re-queued batch is sent whole, and its cursor record keeps the cursor where it is
/// when that is ahead of the batch (`recordSequence`), so the cursor never moves backwards.
///
/// | state | event | action |
/// |---|---|---|
/// | no producer | `attempt(batch)` | `startProducer` |
/// | no producer | `started(nil)` | `readCursor` |
/// | no producer | `started(failure)` | `retry` |
/// | no cursor | `attempt(batch)` | `readCursor` |
/// | no cursor | `cursorRead(c)` | `send` what is past `c` (nil or another outbox's: nothing committed yet), or `delivered`; a re-queued batch whole |
/// | no cursor | `cursorFailed()` | `retry` |
/// | ready | `attempt(batch)` | `send` what is past the cursor, or `delivered`; a re-queued batch whole |
/// | sending, aborting | `attempt(batch)` | `startProducer`: an attempt cut short left its outcome unknown |
/// | sending | `committed()` | `delivered`; the cursor is the record's sequence (`recordSequence`) |
/// | sending | `failed(.abortable)`, `failed(.retriable)` | `abort` |
/// | sending | `failed(.fatal)` | `retry`; no producer |
/// | aborting | `aborted(nil)` | `retry`: the batch goes again in a new transaction |
/// | aborting | `aborted(failure)` | `retry`; no producer |
public struct KafkaTransactionStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Destroy the producer if any, start one and `init_transactions`.
        case startProducer
        /// Read the sink's last committed cursor record (`read_committed`).
        case readCursor
        /// Begin a transaction, produce these sequences and a cursor record with the last, commit.
        case send([Int64])
        /// Abort the transaction in progress.
        case abort
        /// The whole batch is in Kafka's committed log.
        case delivered
        /// The attempt failed; the forwarder backs off and tries the batch again.
        case retry
    }

    /// How librdkafka classifies a transactional call's error.
    public enum Failure: Sendable, Equatable {
        /// The call may be tried again (a timeout, a coordinator moving).
        case retriable
        /// The transaction must be aborted; the producer stays usable.
        case abortable
        /// The producer is unusable (fenced, out-of-order sequence).
        case fatal
    }

    /// A cursor record: the outbox whose sequence it holds (`meta.outbox_id`) and that sequence.
    public struct Cursor: Sendable, Equatable {
        public var outbox: String
        public var sequence: Int64

        public init(outbox: String, sequence: Int64) {
            (self.outbox, self.sequence) = (outbox, sequence)
        }
    }

    private enum State: Equatable {
        case noProducer, noCursor, ready, sending, aborting
    }

    private var state = State.noProducer
    private var batch: [Int64] = []
    /// The outbox the batch comes from.
    private var outbox = ""
    private var requeued = false
    /// The last cursor Kafka committed for this sink, as far as the sink knows.
    public private(set) var cursor: Cursor?

    public init() {}

    /// Starts an attempt over `batch` (sequences in order) of `outbox`, `requeued` by an operator.
    public mutating func attempt(_ batch: [Int64], outbox: String, requeued: Bool = false) -> Action {
        self.batch = batch
        self.outbox = outbox
        self.requeued = requeued
        switch state {
        case .noProducer: return .startProducer
        case .noCursor: return .readCursor
        case .ready: return send()
        case .sending, .aborting:
            // An attempt cut short (a stop) left a transaction whose outcome is unknown.
            state = .noProducer
            return .startProducer
        }
    }

    /// `init_transactions` returned: nil on success.
    public mutating func started(_ failure: Failure?) -> Action {
        guard failure == nil else {
            state = .noProducer
            return .retry
        }
        state = .noCursor
        return .readCursor
    }

    /// The cursor record read, nil when the sink has none yet.
    public mutating func cursorRead(_ cursor: Cursor?) -> Action {
        self.cursor = cursor
        state = .ready
        return send()
    }

    public mutating func cursorFailed() -> Action {
        state = .noCursor
        return .retry
    }

    /// The transaction committed.
    public mutating func committed() -> Action {
        if !batch.isEmpty { cursor = Cursor(outbox: outbox, sequence: recordSequence) }
        state = .ready
        return .delivered
    }

    /// Producing or committing failed.
    public mutating func failed(_ failure: Failure) -> Action {
        if failure == .fatal {
            state = .noProducer
            return .retry
        }
        state = .aborting
        return .abort
    }

    /// `abort_transaction` returned: nil on success.
    public mutating func aborted(_ failure: Failure?) -> Action {
        state = failure == nil ? .ready : .noProducer
        return .retry
    }

    /// The sequence the cursor record of the transaction being sent holds: the batch's last, or
    /// the cursor when it is ahead of a re-queued batch.
    public var recordSequence: Int64 { max(batch.last ?? 0, committedSequence ?? 0) }

    /// The last sequence of the batch's outbox Kafka committed.
    private var committedSequence: Int64? { cursor?.outbox == outbox ? cursor?.sequence : nil }

    private mutating func send() -> Action {
        let rest = requeued ? batch : committedSequence.map { done in batch.filter { $0 > done } } ?? batch
        guard !rest.isEmpty else { return .delivered }
        state = .sending
        return .send(rest)
    }
}
