/// The Kafka sink's settlement policy (SPEC 5.4): a batch is delivered when every record's
/// delivery report succeeded, and what a failed attempt did deliver counts only as a run from
/// the batch's start.
///
/// librdkafka reports each record once, and out of order across partitions: record 7 may be
/// acknowledged while record 5 still waits, or fails. An attempt waits for every report of
/// what it produced (librdkafka fails a record itself when the sink's timeout passes), so no
/// record is produced again while a copy is still in librdkafka's queue. Then the batch's
/// leading records that succeeded, in sequence order, form the run the next attempt of the same
/// batch skips; everything after the first record not delivered is produced again, so a
/// subject's events stay in order and a record acknowledged past a gap comes twice, never
/// missing. Each produced record gets a token (its delivery report's opaque): a report whose
/// token belongs to an earlier attempt (purged after its timeout) is ignored.
///
/// | event | what follows |
/// |---|---|
/// | `attempt(sequences)` | the sequences to produce: the batch without its delivered run |
/// | `produced(sequence)` | the record's token; the attempt waits for its report |
/// | `notProduced(sequence, code)` | librdkafka refused the record at once (queue full, unknown topic) |
/// | `report(token, code)` | the record succeeded (0) or failed; the attempt's decision |
/// | `ended()` | the decision, `timedOut` with reports missing; the delivered run grows |
public struct KafkaDeliveryStateMachine: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Reports of the attempt are still missing.
        case wait
        case delivered
        /// `sequence` is the batch's first record not delivered; `code` is librdkafka's error.
        case failed(sequence: Int64, code: Int32)
        /// The attempt ended with reports missing (the sink's timeout, a stop).
        case timedOut
    }

    /// The batch's leading sequences delivered by earlier attempts.
    private var run: [Int64] = []
    private var batch: [Int64] = []
    /// The sequence of each token awaiting its report.
    private var waiting: [Int: Int64] = [:]
    /// What the attempt's reports said: 0 for success, else the error code.
    private var results: [Int64: Int32] = [:]
    private var nextToken = 1

    public init() {}

    /// Starts an attempt over `sequences` (in order); returns those to produce. A batch that
    /// does not start with the delivered run (another batch, a half) starts a new run.
    public mutating func attempt(_ sequences: [Int64]) -> [Int64] {
        if !sequences.starts(with: run) { run = [] }
        batch = sequences
        waiting.removeAll()
        results.removeAll()
        return Array(sequences.dropFirst(run.count))
    }

    /// The token of the record just produced for `sequence`.
    public mutating func produced(_ sequence: Int64) -> Int {
        let token = nextToken
        nextToken += 1
        waiting[token] = sequence
        return token
    }

    public mutating func notProduced(_ sequence: Int64, code: Int32) {
        results[sequence] = code
    }

    /// A delivery report; `code` 0 is success.
    @discardableResult
    public mutating func report(token: Int, code: Int32) -> Decision {
        if let sequence = waiting.removeValue(forKey: token) { results[sequence] = code }
        return decision
    }

    public var decision: Decision {
        guard waiting.isEmpty else { return .wait }
        for sequence in batch.dropFirst(run.count) {
            guard let code = results[sequence] else { return .timedOut }
            if code != 0 { return .failed(sequence: sequence, code: code) }
        }
        return .delivered
    }

    /// Ends the attempt: its decision, and the delivered run extended by its leading successes.
    /// Reports that come later are ignored.
    public mutating func ended() -> Decision {
        let decision = waiting.isEmpty ? self.decision : .timedOut
        for sequence in batch.dropFirst(run.count) {
            guard results[sequence] == 0 else { break }
            run.append(sequence)
        }
        if decision == .delivered { run = [] }
        waiting.removeAll()
        results.removeAll()
        return decision
    }

    /// The last sequence of the batch delivered in a run from its start by the attempts so far.
    public var deliveredThrough: Int64? { run.last }
}
