import EdgeAgentCore
import Foundation

/// `exactly_once: true` (SPEC 5.4): the sink performs what `KafkaTransactionStateMachine`
/// decides, one action at a time, until the batch is delivered or the forwarder must retry it.
extension KafkaSink {
    func deliverInTransactions(_ events: [StoredEvent]) async -> DeliveryOutcome {
        var action = transactions.withLock { $0.attempt(events.map(\.sequence)) }
        var error: (code: Int32, text: String)?
        while true {
            switch action {
            case .delivered:
                logged.withLock { $0 = nil }
                return .delivered
            case .retry:
                return retryOutcome(error, count: events.count)
            case .startProducer:
                let old = producer.withLock { current -> KafkaProducer? in
                    defer { current = nil }
                    return current
                }
                await old?.close()
                let fresh: KafkaProducer
                do {
                    fresh = try KafkaProducer(properties, name: name)
                } catch {
                    logger.error("Cannot start a Kafka producer.", metadata: ["error": "\(error)"])
                    return .retry(.connect, retryAfter: nil)
                }
                producer.withLock { $0 = fresh }
                let failure = await fresh.initTransactions(timeout: config.timeout)
                if let failure { error = (failure.code, failure.text) }
                action = transactions.withLock { $0.started(failure?.failure) }
            case .readCursor:
                guard let current = producer.withLock({ $0 }) else { return .retry(.connect, retryAfter: nil) }
                let (topic, key, connection, timeout) = (config.cursorTopic, cursorKey, connection, config.timeout)
                let read = await current.blocking {
                    Result {
                        try KafkaCursorReader.last(
                            topic: topic, key: key, properties: connection, timeout: timeout,
                            interrupted: { current.isInterrupted })
                    }
                }
                switch read {
                case let .success(sequence)?:
                    if let sequence {
                        logger.info("Kafka holds the sink's cursor.", metadata: ["sequence": "\(sequence)"])
                    }
                    action = transactions.withLock { $0.cursorRead(sequence) }
                case let .failure(failure)?:
                    error = (-1, "\(failure)")
                    action = transactions.withLock { $0.cursorFailed() }
                case nil:
                    action = transactions.withLock { $0.cursorFailed() }
                }
            case let .send(sequences):
                guard let current = producer.withLock({ $0 }) else { return .retry(.connect, retryAfter: nil) }
                let failure = await send(events, sequences, producer: current)
                if let failure {
                    error = (failure.code, failure.text)
                    if failure.failure == .fatal {
                        logger.error("Kafka producer failed; starting a new one.", metadata: ["error": "\(failure)"])
                    }
                }
                action = transactions.withLock { machine in
                    if let failure { machine.failed(failure.failure) } else { machine.committed() }
                }
            case .abort:
                guard let current = producer.withLock({ $0 }) else { return .retry(.connect, retryAfter: nil) }
                let failure = await current.abortTransaction(timeout: config.timeout)
                action = transactions.withLock { $0.aborted(failure?.failure) }
            }
        }
    }

    /// One transaction: `sequences` of `events` and the cursor record with the last; nil once committed.
    private func send(_ events: [StoredEvent], _ sequences: [Int64], producer: KafkaProducer) async
        -> TransactionError?
    {
        if let failure = producer.beginTransaction() { return failure }
        var index = events.startIndex
        for sequence in sequences {
            while events[index].sequence != sequence { index += 1 }
            let code = produceRecord(events[index], producer: producer, token: 0)
            if code != 0 { return Self.produceError(code) }
        }
        var value = #"{"sink":"# + JSONValue.string(name).json + #","sequence":\#(sequences.last!)}"#
        let code = value.withUTF8 {
            producer.produce(
                topic: config.cursorTopic, key: cursorKey, value: UnsafeRawBufferPointer($0), headers: [], token: 0)
        }
        if code != 0 { return Self.produceError(code) }
        return await producer.commitTransaction(timeout: config.timeout)
    }

    /// A record librdkafka refused at once: the transaction is aborted, or the producer replaced
    /// when it failed fatally.
    private static func produceError(_ code: Int32) -> TransactionError {
        TransactionError(
            failure: code == KafkaProducer.Code.fatal ? .fatal : .abortable, code: code,
            text: KafkaProducer.Code.text(code))
    }

    /// What the forwarder does after the last error, the transaction aborted or the producer
    /// gone: a refusal of the credentials or the topic is a configuration problem; a record too
    /// large or invalid is isolated (the batch halved) and dead-lettered alone, as without
    /// transactions, instead of failing every transaction of the batch again; anything else is
    /// retried. Each error is logged once until a batch is delivered.
    private func retryOutcome(_ error: (code: Int32, text: String)?, count: Int) -> DeliveryOutcome {
        guard let error else { return .retry(.connect, retryAfter: nil) }
        if logged.withLock({ $0 != error.text }) {
            logged.withLock { $0 = error.text }
            logger.warning("Kafka reports an error.", metadata: ["error": "\(error.text)"])
        }
        if KafkaProducer.Code.refused.contains(error.code) {
            return .misconfigured(status: Int(error.code), body: error.text)
        }
        if KafkaProducer.Code.tooLarge.contains(error.code) {
            return count == 1 ? .rejected(status: 413, body: error.text) : .tooLarge
        }
        if KafkaProducer.Code.invalid.contains(error.code) {
            return .rejected(status: Int(error.code), body: error.text)
        }
        let timedOut = error.code == KafkaProducer.Code.timedOut || error.code == KafkaProducer.Code.callTimedOut
        return .retry(timedOut ? .timeout : .connect, retryAfter: nil)
    }
}
