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
/// missing. Each record of an attempt gets a token (its delivery report's opaque), numbered in
/// the attempt's order from `firstToken`, so a report finds its record by position; tokens are
/// never given twice, and a report whose token belongs to an earlier attempt (purged after its
/// timeout) is ignored.
///
/// | event | what follows |
/// |---|---|
/// | `attempt(sequences)` | the sequences to produce: the batch without its delivered run; each awaits its report, the first's token `firstToken`, each next one's the next number |
/// | `notProduced(from: token, code)` | librdkafka refused that record at once (queue full, unknown topic): it and those after it are not produced |
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
    /// What the report of each record of the attempt (the batch after the run, in order) said:
    /// nil while awaited, 0 for success, else the error code.
    private var results: [Int32?] = []
    /// Reports still awaited.
    private var waiting = 0
    /// The token of the attempt's first record; the records after it have the next numbers.
    public private(set) var firstToken = 1
    private var nextToken = 1

    public init() {}

    /// Starts an attempt over `sequences` (in order); returns those to produce. A batch that
    /// does not start with the delivered run (another batch, a half) starts a new run.
    public mutating func attempt(_ sequences: [Int64]) -> [Int64] {
        if !sequences.starts(with: run) { run = [] }
        batch = sequences
        let produce = Array(sequences.dropFirst(run.count))
        results = Array(repeating: nil, count: produce.count)
        waiting = produce.count
        firstToken = nextToken
        nextToken += produce.count
        return produce
    }

    /// librdkafka refused the record of `token` at once: the attempt ends there, and neither it
    /// nor any record after it is produced.
    public mutating func notProduced(from token: Int, code: Int32) {
        for index in max(0, token - firstToken)..<results.count where results[index] == nil {
            results[index] = code
            waiting -= 1
        }
    }

    /// A delivery report; `code` 0 is success. A token of no record awaited (an earlier attempt's,
    /// purged after its timeout) is ignored.
    @discardableResult
    public mutating func report(token: Int, code: Int32) -> Decision {
        let index = token - firstToken
        if results.indices.contains(index), results[index] == nil {
            results[index] = code
            waiting -= 1
        }
        return decision
    }

    public var decision: Decision {
        guard waiting == 0 else { return .wait }
        for (index, result) in results.enumerated() {
            guard let code = result else { return .timedOut }
            if code != 0 { return .failed(sequence: batch[run.count + index], code: code) }
        }
        return .delivered
    }

    /// Ends the attempt: its decision, and the delivered run extended by its leading successes.
    /// Reports that come later are ignored.
    public mutating func ended() -> Decision {
        let decision = waiting == 0 ? self.decision : .timedOut
        let start = run.count
        for (index, result) in results.enumerated() {
            guard result == 0 else { break }
            run.append(batch[start + index])
        }
        if decision == .delivered { run = [] }
        waiting = 0
        results = []
        return decision
    }

    /// The last sequence of the batch delivered in a run from its start by the attempts so far.
    public var deliveredThrough: Int64? { run.last }
}
