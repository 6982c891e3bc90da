import EdgeAgentCore
import Foundation

/// `exactly_once: true` (SPEC 5.4): the sink performs what `KafkaTransactionStateMachine`
/// decides, one action at a time, until the batch is delivered or the forwarder must retry it.
extension KafkaSink {
    func deliverInTransactions(_ events: [StoredEvent], from origin: BatchOrigin) async -> DeliveryOutcome {
        var action = transactions.withLock {
            $0.attempt(events.map(\.sequence), outbox: origin.outbox, requeued: origin.requeued)
        }
        var error: TransactionError?
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
                if let failure { error = failure }
                action = transactions.withLock { $0.started(failure?.failure) }
            case .readCursor:
                guard let current = producer.withLock({ $0 }) else { return .retry(.connect, retryAfter: nil) }
                let (topic, key, connection, timeout) = (config.cursorTopic, cursorKey, connection, config.timeout)
                let (sink, agent) = (name, agentID)
                let read = await current.blocking {
                    Result {
                        try KafkaCursorReader.last(
                            topic: topic, key: key, sink: sink, agent: agent, properties: connection,
                            timeout: timeout, interrupted: { current.isInterrupted })
                    }
                }
                switch read {
                case let .success(cursor)?:
                    if let cursor, cursor.outbox == origin.outbox {
                        logger.info("Kafka holds the sink's cursor.", metadata: ["sequence": "\(cursor.sequence)"])
                        if !origin.requeued, let first = events.first, cursor.sequence >= first.sequence {
                            logger.notice(
                                "Kafka's cursor is ahead of the outbox's; what it committed is not sent again.",
                                metadata: ["sequence": "\(cursor.sequence)", "outbox_cursor": "\(first.sequence - 1)"])
                        }
                    } else if let cursor {
                        logger.warning(
                            "Kafka holds a cursor of another outbox; nothing of this one counts as sent.",
                            metadata: ["sequence": "\(cursor.sequence)", "outbox": "\(cursor.outbox)"])
                    }
                    action = transactions.withLock { $0.cursorRead(cursor) }
                case let .failure(failure)?:
                    error = TransactionError(failure: .retriable, code: -1, text: "\(failure)")
                    action = transactions.withLock { $0.cursorFailed() }
                case nil:
                    action = transactions.withLock { $0.cursorFailed() }
                }
            case let .send(sequences):
                guard let current = producer.withLock({ $0 }) else { return .retry(.connect, retryAfter: nil) }
                let record = transactions.withLock { $0.recordSequence }
                let failure = await send(events, sequences, record: record, outbox: origin.outbox, producer: current)
                if let failure {
                    error = failure
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

    /// One transaction: `sequences` of `events` and the cursor record (`record`, of `outbox`);
    /// nil once committed.
    private func send(
        _ events: [StoredEvent], _ sequences: [Int64], record: Int64, outbox: String, producer: KafkaProducer
    ) async -> TransactionError? {
        if let failure = producer.beginTransaction() { return failure }
        var index = events.startIndex
        var route = Route()
        // A record sent before failed and made the transaction abortable: librdkafka takes no
        // more (`state`), and the commit says why it failed.
        var abortable = false
        for sequence in sequences where !abortable {
            while events[index].sequence != sequence { index += 1 }
            let code = produceRecord(
                type: events[index].type, body: events[index].body, producer: producer, token: Int(sequence),
                route: &route)
            abortable = code == KafkaProducer.Code.state
            if code != 0, !abortable { return Self.produceError(code, token: Int(sequence)) }
        }
        if !abortable {
            var value =
                #"{"sink":"# + JSONValue.string(name).json + #","sequence":\#(record),"agent":"#
                + JSONValue.string(agentID).json + #","outbox":"# + JSONValue.string(outbox).json + "}"
            var key = cursorKey
            let code = key.withUTF8 { key in
                value.withUTF8 {
                    producer.produce(
                        topic: producer.topic(config.cursorTopic), key: UnsafeRawBufferPointer(key),
                        value: UnsafeRawBufferPointer($0), headers: [], token: 0)
                }
            }
            abortable = code == KafkaProducer.Code.state
            if code != 0, !abortable { return Self.produceError(code, token: 0) }
        }
        guard let failure = await producer.commitTransaction(timeout: config.timeout) else {
            // librdkafka refuses records only in a transaction that cannot commit; were one to
            // commit anyway, the records not produced must not count as sent: a new producer
            // reads the cursor, which this transaction did not move.
            return abortable
                ? TransactionError(
                    failure: .fatal, code: KafkaProducer.Code.state,
                    text: "a transaction committed without all its records")
                : nil
        }
        return Self.cause(of: failure, failed: producer.session.state.withLock { $0.failedInTransaction })
    }

    /// Why a transaction failed whose commit returned `commit`: the record that failed
    /// (`failed`, from the delivery reports), unless it was only purged (the consequence of
    /// another record's failure, whose report may come after the commit returned): then the
    /// commit's own error, the one that made the transaction abortable.
    static func cause(of commit: TransactionError, failed: (token: Int, code: Int32)?) -> TransactionError {
        guard let failed, !KafkaProducer.Code.purged.contains(failed.code) else { return commit }
        return produceError(failed.code, token: failed.token, failure: commit.failure)
    }

    /// A record that failed (`token`: its sequence, 0 for the cursor record): the transaction is
    /// aborted, or the producer replaced when it failed fatally.
    private static func produceError(_ code: Int32, token: Int, failure: KafkaTransactionStateMachine.Failure? = nil)
        -> TransactionError
    {
        let record = token == 0 ? "the cursor record" : "sequence \(token)"
        return TransactionError(
            failure: failure ?? (code == KafkaProducer.Code.fatal ? .fatal : .abortable), code: code,
            text: "\(KafkaProducer.Code.text(code)) (\(record))", token: token)
    }

    /// The forwarder's outcome for the last error of an attempt over `count` events, once its
    /// transaction is aborted (nothing of it is visible, so the batch may be split), as in the
    /// default mode (`KafkaSink.outcome(code:text:count:cursorRecord:)`); each error is logged
    /// once until a batch is delivered.
    private func retryOutcome(_ error: TransactionError?, count: Int) -> DeliveryOutcome {
        guard let error else { return .retry(.connect, retryAfter: nil) }
        if logged.withLock({ $0 != error.text }) {
            logged.withLock { $0 = error.text }
            logger.warning("Kafka reports an error.", metadata: ["error": "\(error.text)"])
        }
        return Self.outcome(code: error.code, text: error.text, count: count, cursorRecord: error.token == 0)
    }
}
