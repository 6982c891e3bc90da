import EdgeAgentCore
import Foundation
import Logging
import Synchronization

/// SPEC 5.4: each event one Kafka record, keyed by its `subject`, following the CloudEvents
/// Kafka protocol binding (structured: the event's JSON with `content-type:
/// application/cloudevents+json`; binary: `ce_` headers and `data`), to the topic template.
///
/// The outbox is the buffer and librdkafka's queue only transit. The producer is idempotent
/// with `acks=all`, and its message timeout is the sink's `timeout`: a batch is produced whole
/// and is delivered when every delivery report succeeded. An attempt waits for all of its
/// reports, so nothing is produced again while librdkafka still holds a copy; what failed or
/// timed out is produced again from the outbox by the forwarder's next attempt, from the first
/// record not delivered on (`KafkaDeliveryStateMachine`), never dropped. A fatal producer error
/// (fenced, out-of-order sequence) destroys the producer and the next attempt starts a new one.
/// A stop purges librdkafka's queue; the cursor moves past the run of successful reports from
/// the batch's start (`DeliveryOutcome.partlyDelivered`), and what follows stays pending.
///
/// With `exactly_once: true` the producer is transactional (`transactional.id`
/// `{agent.id}.{sink}`) and each batch goes with a cursor record in one transaction (`{"sink",
/// "sequence", "agent", "outbox"}`: the outbox's identity tells its sequences from an earlier
/// outbox's); the sink performs what `KafkaTransactionStateMachine` decides.
public final class KafkaSink: EventSink {
    let config: SinkConfig.Kafka
    let name: String
    let properties: [(String, String)]
    /// The connection's properties (brokers, TLS, SASL), for the cursor reader.
    let connection: [(String, String)]
    /// `{agent.id}.{sink}`: the transactional id and the cursor record's key.
    let cursorKey: String
    let agentID: String
    let values: [String: String]
    let usesSubject: Bool
    let logger: Logger
    /// The producer in use; a new one replaces it after a fatal error.
    let producer: Mutex<KafkaProducer?>
    /// librdkafka's error last logged, so that each is logged once until a batch is delivered.
    let logged = Mutex<String?>(nil)
    /// `exactly_once`: what the sink knows of its transactions and Kafka's cursor.
    let transactions = Mutex(KafkaTransactionStateMachine())

    public init(_ config: SinkConfig.Kafka, name: String, agent: AgentConfig.Agent, logger: Logger) throws {
        self.config = config
        self.name = name
        var logger = logger
        logger[metadataKey: "sink"] = "\(name)"
        self.logger = logger
        values = ["{site}": agent.site, "{line}": agent.line, "{agent}": agent.id]
        usesSubject = config.topic.contains("{subject}")
        cursorKey = "\(agent.id).\(name)"
        agentID = agent.id
        connection = Self.connection(config, clientID: agent.id)
        properties = Self.properties(config, clientID: agent.id, transactionalID: config.exactlyOnce ? cursorKey : nil)
        // The transactional producer starts with the first batch (`KafkaTransactionStateMachine`).
        producer = Mutex(config.exactlyOnce ? nil : try KafkaProducer(properties, name: name))
    }

    /// librdkafka's configuration for the sink's producer (SPEC 3 `sinks[].kafka`).
    static func properties(_ config: SinkConfig.Kafka, clientID: String, transactionalID: String? = nil) -> [(
        String, String
    )] {
        var properties = connection(config, clientID: clientID)
        properties += [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            // librdkafka fails a record itself once the sink's timeout passes: its queue never
            // holds a record longer than an attempt waits for it.
            ("message.timeout.ms", "\(config.timeout.milliseconds)"),
            // A request to a broker that stopped answering fails within it too.
            ("request.timeout.ms", "\(config.timeout.milliseconds)"),
            ("compression.type", config.compression),
            // A whole batch (up to 100,000 events) fits in the queue.
            ("queue.buffering.max.messages", "1000000"),
        ]
        if let transactionalID {
            // A transaction outlives the records' timeout; a crashed one is aborted by the next
            // producer's `init_transactions`, or by the broker after this.
            let timeout = max(60_000, 2 * config.timeout.milliseconds)
            properties += [("transactional.id", transactionalID), ("transaction.timeout.ms", "\(timeout)")]
        }
        return properties
    }

    /// The brokers, TLS and SASL: what the producer and the cursor reader share.
    static func connection(_ config: SinkConfig.Kafka, clientID: String) -> [(String, String)] {
        var properties = [("bootstrap.servers", config.brokers.joined(separator: ",")), ("client.id", clientID)]
        let tls = config.tls
        if let sasl = config.sasl {
            properties += [
                ("security.protocol", tls ? "sasl_ssl" : "sasl_plaintext"),
                ("sasl.mechanism", sasl.mechanism.rawValue),
                ("sasl.username", sasl.username),
                ("sasl.password", sasl.password),
            ]
        } else if tls {
            properties.append(("security.protocol", "ssl"))
        }
        if tls {
            // Verification on: the broker's chain must lead to the CA (or the system's), and its name must match.
            properties += [
                ("enable.ssl.certificate.verification", "true"),
                ("ssl.endpoint.identification.algorithm", "https"),
            ]
            if let ca = config.caFile { properties.append(("ssl.ca.location", ca)) }
            if let cert = config.certFile { properties.append(("ssl.certificate.location", cert)) }
            if let key = config.keyFile { properties.append(("ssl.key.location", key)) }
        }
        return properties
    }

    public func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome {
        await deliver(events, from: BatchOrigin(outbox: "", requeued: false))
    }

    public func deliver(_ events: [StoredEvent], from origin: BatchOrigin) async -> DeliveryOutcome {
        if config.exactlyOnce { return await deliverInTransactions(events, from: origin) }
        guard let producer = await usableProducer() else { return .retry(.connect, retryAfter: nil) }
        let session = producer.session
        let (produce, firstToken) = session.state.withLock {
            ($0.deliveries.attempt(events.map(\.sequence)), $0.deliveries.firstToken)
        }
        // The attempt's records are the batch's last ones (after its delivered run).
        var route = Route()
        let start = events.count - produce.count
        for offset in 0..<produce.count {
            let token = firstToken + offset
            let code = produceRecord(
                type: events[start + offset].type, body: events[start + offset].body, producer: producer,
                token: token, route: &route)
            if code != 0 {
                // What follows is not produced: the attempt ends at this record.
                session.state.withLock { $0.deliveries.notProduced(from: token, code: code) }
                break
            }
        }
        // Until every report is in or the forwarder stops; librdkafka fails what it could not
        // deliver within the timeout, and a few seconds more cover a report on its way.
        let deadline = ContinuousClock.now + config.timeout + .seconds(5)
        await session.wait(until: deadline) { $0.deliveries.decision != .wait || $0.fatal != nil }
        let (decision, fatal, error, through) = session.state.withLock {
            ($0.deliveries.ended(), $0.fatal, $0.lastError, $0.deliveries.deliveredThrough)
        }
        if decision == .timedOut || Task.isCancelled { producer.purge() }
        if decision == .delivered {
            logged.withLock { $0 = nil }
        } else if let error, logged.withLock({ $0 != error.text }) {
            logged.withLock { $0 = error.text }
            logger.warning("Kafka reports an error.", metadata: ["error": "\(error.text)"])
        }
        // The run of successful reports from the batch's start is delivered whatever follows.
        let accepted = through.map { last in events.prefix { $0.sequence <= last }.count } ?? 0
        let outcome = self.outcome(decision, fatal: fatal, error: error, count: events.count)
        return accepted > 0 && outcome != .delivered ? .partlyDelivered(accepted, rest: outcome) : outcome
    }

    /// What an attempt's decision means to the forwarder.
    private func outcome(
        _ decision: KafkaDeliveryStateMachine.Decision, fatal: String?, error: (code: Int32, text: String)?,
        count: Int
    ) -> DeliveryOutcome {
        if let fatal, decision != .delivered {
            logger.error("Kafka producer failed; starting a new one.", metadata: ["error": "\(fatal)"])
            return .retry(.connect, retryAfter: nil)
        }
        switch decision {
        case .delivered: return .delivered
        case .wait, .timedOut:
            // Records that time out while the brokers refuse the credentials: a configuration problem.
            if let error, KafkaProducer.Code.refused.contains(error.code) {
                return .misconfigured(status: Int(error.code), body: error.text)
            }
            return .retry(.timeout, retryAfter: nil)
        case let .failed(sequence, code):
            return Self.outcome(
                code: code, text: "\(KafkaProducer.Code.text(code)) (sequence \(sequence))", count: count)
        }
    }

    /// What a record's error (`code`, described by `text`) means to the forwarder for an
    /// attempt over `count` events: a record too large or invalid is rejected, so the forwarder
    /// halves the batch down to the one event and dead-letters it; a refusal of the credentials
    /// or the topic is a configuration problem; the rest is retried. The cursor record
    /// (`exactly_once`) is the sink's own: a broker that refuses it has a cursor topic
    /// configured wrong, and no event is at fault.
    static func outcome(code: Int32, text: String, count: Int, cursorRecord: Bool = false) -> DeliveryOutcome {
        let rejected = KafkaProducer.Code.tooLarge.contains(code) || KafkaProducer.Code.invalid.contains(code)
        if KafkaProducer.Code.refused.contains(code) || (rejected && cursorRecord) {
            return .misconfigured(status: Int(code), body: text)
        }
        if KafkaProducer.Code.tooLarge.contains(code) {
            return count == 1 ? .rejected(status: 413, body: text) : .tooLarge
        }
        if KafkaProducer.Code.invalid.contains(code) { return .rejected(status: Int(code), body: text) }
        let timedOut = code == KafkaProducer.Code.timedOut || code == KafkaProducer.Code.callTimedOut
        return .retry(timedOut ? .timeout : .connect, retryAfter: nil)
    }

    /// The producer, a new one in place of one that failed fatally; nil when none can be made.
    private func usableProducer() async -> KafkaProducer? {
        let current = producer.withLock { $0 }
        if let current, current.session.state.withLock({ $0.fatal == nil }) { return current }
        if let current {
            producer.withLock { $0 = nil }
            await current.close()
        }
        do {
            let fresh = try KafkaProducer(properties, name: name)
            producer.withLock { $0 = fresh }
            return fresh
        } catch {
            logger.error("Cannot start a Kafka producer.", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The topic of the record last produced: the next record of the same type (and subject,
    /// when the template names it) goes to the same one without filling the template again.
    struct Route {
        var type = ""
        var subject: [UInt8] = []
        var topic: OpaquePointer?
    }

    /// The header of every record in structured mode.
    static let structured = [("content-type", "application/cloudevents+json")]

    /// Produces the record of an event of `type` stored as `body` (the event's fields, not the
    /// event: a copy of it per record would retain and release each of its strings).
    func produceRecord(type: String, body: Substring, producer: KafkaProducer, token: Int, route: inout Route) -> Int32
    {
        switch config.mode {
        case .structured:
            var body = body
            return body.withUTF8 { bytes in
                EnvelopeSubject.withSubject(in: bytes) { subject in
                    producer.produce(
                        topic: topic(type, subject, producer: producer, route: &route),
                        key: UnsafeRawBufferPointer(subject), value: UnsafeRawBufferPointer(bytes),
                        headers: Self.structured, token: token)
                }
            }
        case .binary:
            var subject = EnvelopeSubject.of(body)
            var (headers, data) = Self.binary(body)
            return subject.withUTF8 { key in
                data.withUTF8 {
                    producer.produce(
                        topic: topic(type, key, producer: producer, route: &route),
                        key: UnsafeRawBufferPointer(key), value: UnsafeRawBufferPointer($0), headers: headers,
                        token: token)
                }
            }
        }
    }

    /// The producer's handle of the topic for a record of `type` about `subject` (UTF-8).
    private func topic(
        _ type: String, _ subject: UnsafeBufferPointer<UInt8>, producer: KafkaProducer, route: inout Route
    ) -> OpaquePointer? {
        if route.topic != nil, route.type == type, !usesSubject || route.subject.elementsEqual(subject) {
            return route.topic
        }
        let name = topic(type: type, subject: String(decoding: subject, as: UTF8.self))
        route = Route(type: type, subject: usesSubject ? Array(subject) : [], topic: producer.topic(name))
        return route.topic
    }

    /// Binary mode: each attribute a `ce_` header (`datacontenttype` as `content-type`), the
    /// value the event's `data`. The stored envelope ends with `"data":…}` and its attributes
    /// before it are strings (`EnvelopeEncoder`), whose quotes are escaped: the first `,"data":`
    /// is the envelope's (the data may hold such a key too).
    static func binary(_ body: Substring) -> (headers: [(String, String)], data: String) {
        guard let at = body.range(of: #","data":"#) else { return ([], String(body)) }
        let data = String(body[at.upperBound...].dropLast())
        let head = Data((body[..<at.lowerBound] + "}").utf8)
        guard let attributes = (try? JSONSerialization.jsonObject(with: head)) as? [String: Any] else {
            return ([], data)
        }
        var headers: [(String, String)] = []
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            let text = value as? String ?? "\(value)"
            headers.append((key == "datacontenttype" ? "content-type" : "ce_\(key)", text))
        }
        return (headers, data)
    }

    /// Topics by (type, subject), filled once: a line has a handful.
    private let topics = Mutex<[String: String]>([:])

    func topic(type: String, subject: String) -> String {
        let key = usesSubject ? type + "\u{0}" + subject : type
        if let known = topics.withLock({ $0[key] }) { return known }
        let topic = KafkaTopic.fill(config.topic, values.merging(["{type}": type, "{subject}": subject]) { $1 })
        topics.withLock { $0[key] = topic }
        return topic
    }

    /// A stop: a transaction left open is aborted (within a few seconds: SPEC 6's stop takes
    /// at most 10), librdkafka's queue is purged and the producer destroyed on its own thread.
    public func shutdown() async {
        let current = producer.withLock { state -> KafkaProducer? in
            defer { state = nil }
            return state
        }
        await current?.abortOpenTransaction(timeout: .seconds(3))
        await current?.close()
    }
}
