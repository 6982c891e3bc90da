import CRdKafka
import EdgeAgentCore
import Foundation

/// Reads a sink's last committed cursor record (SPEC 5.4) with a `read_committed` consumer of
/// its own: every partition of the cursor topic from its start to its end, keeping the last
/// record under the sink's key (a key always lands in one partition, in order). The topic is
/// compacted, so it holds about one record per sink. Blocks: called on the producer's thread
/// of blocking calls, it waits in slices of at most a second and gives up when `interrupted`.
///
/// A `read_committed` consumer reaches a partition's end at its last stable offset: another
/// producer's open transaction (another agent's or sink's) holds back every record after it,
/// the sink's last cursor records among them. A partition counts as read only when that end is
/// its high watermark; until then the read goes on, and fails at its deadline, so the sink never
/// takes an older cursor record for Kafka's cursor.
enum KafkaCursorReader {
    /// The last record keyed `key` in `topic` whose `sink` is `sink` and whose `agent` (when it
    /// has one) is `agent`, nil when there is none; one written without an `outbox` names none
    /// (`""`). `properties`: the connection's (brokers, TLS, SASL).
    static func last(
        topic: String, key: String, sink: String, agent: String, properties: [(String, String)], timeout: Duration,
        interrupted: () -> Bool
    ) throws -> KafkaTransactionStateMachine.Cursor? {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError("cannot create the Kafka configuration") }
        let size = 512
        var message = [CChar](repeating: 0, count: size)
        let settings =
            properties + [
                ("isolation.level", "read_committed"), ("enable.partition.eof", "true"),
                // A group only because librdkafka's consumer wants one; nothing joins or commits.
                ("group.id", "edge-agent.cursor-reader"), ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                // A fetch at a partition's end comes back at once, not after the broker's wait
                // for new records (500 ms by default): the reader only looks for each end.
                ("fetch.wait.max.ms", "10"),
            ]
        for (name, value) in settings where rd_kafka_conf_set(conf, name, value, &message, size) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("\(name): \(text(message))")
        }
        rd_kafka_conf_set_log_cb(conf) { _, _, _, _ in }
        guard let rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &message, size) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("cannot create the Kafka consumer: \(text(message))")
        }
        defer {
            _ = rd_kafka_consumer_close(rk)
            rd_kafka_destroy(rk)
        }
        let deadline = ContinuousClock.now + timeout
        let partitions = try partitionCount(rk, topic: topic, deadline: deadline, interrupted: interrupted)
        let list = rd_kafka_topic_partition_list_new(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in 0..<partitions {
            rd_kafka_topic_partition_list_add(list, topic, partition)?.pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
        }
        let assigned = rd_kafka_assign(rk, list)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError("cannot read \(topic): \(String(cString: rd_kafka_err2str(assigned)))")
        }
        var ended: Set<Int32> = []
        /// Partitions whose end is held back by an open transaction.
        var behind: Set<Int32> = []
        var cursor: KafkaTransactionStateMachine.Cursor?
        while ended.count < partitions {
            guard ContinuousClock.now < deadline, !interrupted() else {
                if !behind.isEmpty { throw KafkaError("reading \(topic) waits for an open transaction") }
                throw KafkaError("reading \(topic) timed out")
            }
            guard let record = rd_kafka_consumer_poll(rk, 100) else { continue }
            defer { rd_kafka_message_destroy(record) }
            let m = record.pointee
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                var (low, high): (Int64, Int64) = (0, 0)
                let known = rd_kafka_get_watermark_offsets(rk, topic, m.partition, &low, &high)
                if known == RD_KAFKA_RESP_ERR_NO_ERROR, high > m.offset {
                    behind.insert(m.partition)
                } else {
                    behind.remove(m.partition)
                    ended.insert(m.partition)
                }
            } else if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError("cannot read \(topic): \(String(cString: rd_kafka_err2str(m.err)))")
            } else if let keyBytes = m.key, m.key_len == key.utf8.count,
                String(decoding: UnsafeRawBufferPointer(start: keyBytes, count: m.key_len), as: UTF8.self) == key,
                let value = m.payload
            {
                let data = Data(bytes: value, count: m.len)
                guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                    let number = object["sequence"] as? NSNumber
                else { throw KafkaError("a cursor record in \(topic) is not {\"sink\": NAME, \"sequence\": N}") }
                guard object["sink"] as? String == sink, (object["agent"] as? String).map({ $0 == agent }) ?? true
                else { continue }
                cursor = .init(outbox: object["outbox"] as? String ?? "", sequence: number.int64Value)
            }
        }
        return cursor
    }

    private static func partitionCount(
        _ rk: OpaquePointer, topic: String, deadline: ContinuousClock.Instant, interrupted: () -> Bool
    ) throws -> Int32 {
        guard let handle = rd_kafka_topic_new(rk, topic, nil) else {
            throw KafkaError("cannot name the topic \(topic)")
        }
        defer { rd_kafka_topic_destroy(handle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        var err = RD_KAFKA_RESP_ERR__TIMED_OUT
        while err == RD_KAFKA_RESP_ERR__TIMED_OUT, ContinuousClock.now < deadline, !interrupted() {
            err = rd_kafka_metadata(rk, 0, handle, &metadata, Int32(max(1, min(1000, (deadline - .now).milliseconds))))
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError("cannot read \(topic)'s metadata: \(String(cString: rd_kafka_err2str(err)))")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1, let found = metadata.pointee.topics else {
            throw KafkaError("\(topic) is missing")
        }
        guard found.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR, found.pointee.partition_cnt > 0 else {
            throw KafkaError("\(topic): \(String(cString: rd_kafka_err2str(found.pointee.err)))")
        }
        return found.pointee.partition_cnt
    }

    private static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
