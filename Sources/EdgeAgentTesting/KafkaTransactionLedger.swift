/// What a Kafka broker's transaction coordinator knows, kept by `KafkaTransactionRelay` from the
/// requests it passes on: which transaction each transactional record batch belongs to, and how
/// each transaction ended.
///
/// A producer's transactions follow one another: its batches belong to its open transaction
/// until an `EndTxn` (commit or abort) ends it. A new producer for the same `transactional.id`
/// (`InitProducerId`) aborts whatever transaction of an earlier one is still open, as a broker
/// does when it fences that producer. A batch is named by what its header carries (the
/// producer's id and epoch, its first sequence) and where it went, so a retry of the same batch
/// is the same batch, and a fetch finds it again without knowing its offset.
struct KafkaTransactionLedger: Sendable {
    struct Batch: Hashable, Sendable {
        var topic: String
        var partition: Int32
        var producerID: Int64
        var epoch: Int16
        var baseSequence: Int32
    }

    enum Outcome: Sendable, Equatable {
        case open, committed, aborted
    }

    /// Each producer's open transaction, by the number of transactions it ended before.
    private var current: [Int64: Int] = [:]
    private var ended: [Int64: [Int: Outcome]] = [:]
    private var transactionOf: [Batch: (producerID: Int64, index: Int)] = [:]
    private var producers: [String: Set<Int64>] = [:]

    /// A transactional batch was produced.
    mutating func produced(_ batch: Batch) {
        guard transactionOf[batch] == nil else { return }
        transactionOf[batch] = (batch.producerID, current[batch.producerID, default: 0])
    }

    /// `EndTxn` succeeded.
    mutating func end(producerID: Int64, committed: Bool) {
        let index = current[producerID, default: 0]
        ended[producerID, default: [:]][index] = committed ? .committed : .aborted
        current[producerID] = index + 1
    }

    /// `InitProducerId` gave `producerID` to `transactionalID`: earlier producers' open
    /// transactions are aborted.
    mutating func initialized(transactionalID: String, producerID: Int64) {
        for earlier in producers[transactionalID, default: []] where earlier != producerID {
            let index = current[earlier, default: 0]
            if transactionOf.values.contains(where: { $0.producerID == earlier && $0.index == index }) {
                end(producerID: earlier, committed: false)
            }
        }
        producers[transactionalID, default: []].insert(producerID)
    }

    /// A batch not seen produced is open: nothing is shown that the ledger cannot vouch for.
    func outcome(_ batch: Batch) -> Outcome {
        guard let (producerID, index) = transactionOf[batch] else { return .open }
        return ended[producerID]?[index] ?? .open
    }
}
