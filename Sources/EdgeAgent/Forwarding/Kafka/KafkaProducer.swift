import CRdKafka
import EdgeAgentCore
import Foundation
import NIOPosix
import Synchronization

/// librdkafka's producer, wrapped once: with `KafkaCursorReader`, the only files that import it.
///
/// One producer per sink, with a thread of its own that serves librdkafka's callbacks
/// (`rd_kafka_poll`) and, at the end, purges its queue and destroys it: the calls that block
/// never run on the cooperative pool. Producing only copies a record into librdkafka's queue
/// (`RD_KAFKA_MSG_F_COPY`), which does not block. The transactional calls block: they run one
/// at a time on a second thread (`blocking`), in slices of at most a second, so that a stop
/// ends them soon whatever their timeout.
///
/// Callbacks run on that thread and cannot capture: they reach Swift through the `Session`
/// given as the configuration's opaque, a `Sendable` class whose state sits behind a `Mutex`.
/// It is retained when handed to librdkafka and released only after `rd_kafka_destroy`, so
/// librdkafka never calls into a freed object. `@unchecked Sendable` is safe: `handle` is used
/// only through librdkafka's thread-safe calls (produce, purge) until the thread destroys it,
/// after which `close()` (which the owner calls once, last) has returned and nothing uses it.
final class KafkaProducer: @unchecked Sendable {
    /// What the callbacks tell the sink.
    struct SessionState {
        var deliveries = KafkaDeliveryStateMachine()
        /// librdkafka's fatal error (fenced, out-of-order sequence): the producer is unusable.
        var fatal: String?
        /// The last error librdkafka reported outside a delivery (a broker down, authentication),
        /// until a record is delivered.
        var lastError: (code: Int32, text: String)?
        /// The transaction's first failed delivery report since `beginTransaction`: its token
        /// (the record's sequence, 0 for the cursor record) and error. A purge is only a
        /// consequence of another record's failure, so the next failure that is not one takes
        /// its place, whichever report librdkafka served first.
        var failedInTransaction: (token: Int, code: Int32)?

        mutating func recordFailure(token: Int, code: Int32) {
            guard code != 0 else { return }
            let purged = { (code: Int32) in Code.purged.contains(code) }
            if failedInTransaction.map({ purged($0.code) && !purged(code) }) ?? true {
                failedInTransaction = (token, code)
            }
        }
    }

    /// The session's state, changed by the callbacks and waited on by the sink (`Watched`).
    final class Session: Watched<SessionState>, @unchecked Sendable {
        init() { super.init(SessionState()) }
    }

    /// librdkafka's error codes the sink tells apart.
    enum Code {
        static let timedOut = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue
        static let queueFull = RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue
        /// A transactional call that did not finish in its timeout.
        static let callTimedOut = RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue
        static let fatal = RD_KAFKA_RESP_ERR__FATAL.rawValue
        /// `produce` in a transaction that a record sent before made abortable.
        static let state = RD_KAFKA_RESP_ERR__STATE.rawValue
        static let tooLarge: Set<Int32> = [
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue,
        ]
        static let invalid: Set<Int32> = [RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue]
        /// A record taken out of the queue unsent: the transaction failed or was aborted.
        static let purged: Set<Int32> = [
            RD_KAFKA_RESP_ERR__PURGE_QUEUE.rawValue, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT.rawValue,
        ]
        /// Nothing passes by itself: the topic is missing or the agent may not write to it.
        static let refused: Set<Int32> = [
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue,
            RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED.rawValue,
            RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED.rawValue, RD_KAFKA_RESP_ERR__AUTHENTICATION.rawValue,
            RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue,
            RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION.rawValue,
        ]

        static func text(_ code: Int32) -> String {
            String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(rawValue: code)))
        }
    }

    private let handle: OpaquePointer
    private let opaque: Unmanaged<Session>
    let session: Session
    private let closed = Mutex(false)
    /// Set to stop the poll thread.
    private let stopping = Atomic<Bool>(false)
    /// The poll thread's life, which `close()` waits out: the thread ends it as its last act.
    private let thread = ThreadEnd()
    /// The thread of the calls that block.
    private let calls = NIOThreadPool(numberOfThreads: 1)
    /// Set from a `beginTransaction` that succeeded until a commit or an abort succeeds.
    private let inTransaction = Atomic<Bool>(false)
    /// Set when a task waiting for a blocking call is cancelled (a stop): the call gives up at
    /// its next slice, so a stop is never held up for longer than a slice. Cleared by each call.
    private let interrupted = Atomic<Bool>(false)
    /// librdkafka's handle of each topic produced to, by name, kept until the producer is
    /// destroyed: a record names its topic by handle, not by a lookup of its name, and a handle
    /// asks for its topic's leader at once (a record that names a topic the producer does not
    /// know yet waits for librdkafka's next topic scan, up to a second).
    private let topics = Mutex<[String: OpaquePointer]>([:])

    /// `properties`: librdkafka's configuration, name and value.
    init(_ properties: [(String, String)], name: String) throws {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError("cannot create the Kafka configuration") }
        let size = 512
        var message = [CChar](repeating: 0, count: size)
        for (key, value) in properties where rd_kafka_conf_set(conf, key, value, &message, size) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("\(key): \(cText(message))")
        }
        session = Session()
        opaque = Unmanaged.passRetained(session)
        rd_kafka_conf_set_opaque(conf, opaque.toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf, onDeliveryCallback)
        rd_kafka_conf_set_error_cb(conf, onErrorCallback)
        rd_kafka_conf_set_log_cb(conf, onLogCallback)
        // On success rd_kafka_new owns the configuration; on failure it is still ours.
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &message, size) else {
            rd_kafka_conf_destroy(conf)
            opaque.release()
            throw KafkaError("cannot create the Kafka producer: \(cText(message))")
        }
        handle = rk
        calls.start()
        let poller = Thread { [self] in pollLoop() }
        poller.name = "kafka-\(name)"
        poller.start()
    }

    /// The poll thread: serves callbacks until stopped, then purges what is queued (its
    /// reports are served and ignored) and destroys the producer.
    private func pollLoop() {
        while !stopping.load(ordering: .sequentiallyConsistent) { _ = rd_kafka_poll(handle, 100) }
        _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        _ = rd_kafka_poll(handle, 0)
        // Topic handles go first: `rd_kafka_destroy` waits for every one.
        for topic in topics.withLock({ $0.values }) { rd_kafka_topic_destroy(topic) }
        rd_kafka_destroy(handle)
        thread.ended()
    }

    /// The handle of the topic `name`, made on first use; nil when librdkafka refuses the name.
    func topic(_ name: String) -> OpaquePointer? {
        topics.withLock { topics in
            if let known = topics[name] { return known }
            let made = rd_kafka_topic_new(handle, name, nil)
            topics[name] = made
            return made
        }
    }

    /// Queues one record (its bytes copied) for `topic` (`topic(_:)`; nil: an invalid name),
    /// keyed by `key`, its report carrying `token`; returns librdkafka's error code, 0 when queued.
    func produce(
        topic: OpaquePointer?, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
        headers: [(String, String)], token: Int
    ) -> Int32 {
        guard let topic else { return RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue }
        let list = rd_kafka_headers_new(headers.count)
        for (name, text) in headers { _ = rd_kafka_header_add(list, name, -1, text, -1) }
        let rc = edge_kafka_produce(
            handle, topic, key.baseAddress, key.count, value.baseAddress, value.count, list,
            UnsafeMutableRawPointer(bitPattern: token))
        if rc != RD_KAFKA_RESP_ERR_NO_ERROR { rd_kafka_headers_destroy(list) }
        return rc.rawValue
    }

    /// Drops what librdkafka still holds (queued and in flight): its reports come back failed.
    func purge() {
        _ = rd_kafka_purge(
            handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING))
    }

    /// Runs `body` on the thread of the calls that block; nil once the producer closed. A
    /// cancellation sets `isInterrupted`, which `body` checks between slices of its work; it
    /// holds for that call only (the sink makes one at a time).
    func blocking<R: Sendable>(_ body: @escaping @Sendable () -> R) async -> R? {
        interrupted.store(false, ordering: .relaxed)
        return await withTaskCancellationHandler {
            try? await calls.runIfActive(body)
        } onCancel: {
            interrupted.store(true, ordering: .relaxed)
        }
    }

    var isInterrupted: Bool { interrupted.load(ordering: .relaxed) }

    /// `rd_kafka_init_transactions`: fences the previous producer of the same `transactional.id`
    /// and ends its open transaction. Nil on success.
    func initTransactions(timeout: Duration) async -> TransactionError? {
        await transactionCall(timeout: timeout) { rd_kafka_init_transactions($0, $1) }
    }

    func beginTransaction() -> TransactionError? {
        session.state.withLock { $0.failedInTransaction = nil }
        let error = TransactionError(rd_kafka_begin_transaction(handle))
        if error == nil { inTransaction.store(true, ordering: .relaxed) }
        return error
    }

    /// Flushes what the transaction produced and commits it; an error when a record failed.
    func commitTransaction(timeout: Duration) async -> TransactionError? {
        let error = await transactionCall(timeout: timeout) { rd_kafka_commit_transaction($0, $1) }
        if error == nil { inTransaction.store(false, ordering: .relaxed) }
        return error
    }

    /// Purges what the transaction produced and aborts it.
    func abortTransaction(timeout: Duration) async -> TransactionError? {
        let error = await transactionCall(timeout: timeout) { rd_kafka_abort_transaction($0, $1) }
        if error == nil { inTransaction.store(false, ordering: .relaxed) }
        return error
    }

    /// A stop mid-transaction (the sink's calls, cancelled, did not run): the transaction is
    /// aborted within `timeout`, in a task of its own that the stop does not cancel, so that
    /// consumers' last stable offset is not held until the broker's `transaction.timeout.ms`.
    func abortOpenTransaction(timeout: Duration) async {
        guard inTransaction.load(ordering: .relaxed) else { return }
        _ = await Task { await abortTransaction(timeout: timeout) }.value
    }

    /// Calls `call` (handle, milliseconds) in slices of at most a second until it returns
    /// something else than a timeout, `timeout` passes or the wait is interrupted; librdkafka
    /// resumes a transactional call that timed out when it is called again.
    private func transactionCall(
        timeout: Duration, _ call: @escaping @Sendable (OpaquePointer, Int32) -> OpaquePointer?
    ) async -> TransactionError? {
        let deadline = ContinuousClock.now + timeout
        return await blocking { [self] in
            while true {
                let slice = max(1, min(1000, (deadline - .now).milliseconds))
                let error = TransactionError(call(handle, Int32(slice)))
                guard let error, error.code == Code.callTimedOut, error.failure == .retriable,
                    ContinuousClock.now < deadline, !isInterrupted
                else { return error }
            }
        } ?? TransactionError(failure: .fatal, code: RD_KAFKA_RESP_ERR__DESTROY.rawValue, text: "the producer closed")
    }

    /// Stops the poll thread, which purges the queue and destroys the producer, then lets go
    /// of the session: in that order, so no callback finds it gone. The owner calls it once, last.
    func close() async {
        guard
            closed.withLock({ done in
                defer { done = true }
                return !done
            })
        else { return }
        // A call that blocks ends within a slice of a stop (`interrupted`).
        try? await calls.shutdownGracefully()
        stopping.store(true, ordering: .sequentiallyConsistent)
        // Destroying takes a moment (librdkafka's threads end). The wait holds through
        // cancellation, for the session must outlive the producer.
        await thread.wait()
        opaque.release()
    }
}

/// A transactional call's error (`rd_kafka_error_t`), as librdkafka classifies it; one it does
/// not classify leaves the producer's state unknown and counts as fatal.
struct TransactionError: Error, Sendable, CustomStringConvertible {
    let failure: KafkaTransactionStateMachine.Failure
    let code: Int32
    let text: String
    /// The record whose delivery failed, when one is known: its sequence, 0 for the cursor record.
    var token: Int?

    init(failure: KafkaTransactionStateMachine.Failure, code: Int32, text: String, token: Int? = nil) {
        (self.failure, self.code, self.text, self.token) = (failure, code, text, token)
    }

    /// Takes and destroys `error`; nil for none.
    init?(_ error: OpaquePointer?) {
        guard let error else { return nil }
        defer { rd_kafka_error_destroy(error) }
        failure =
            if rd_kafka_error_is_fatal(error) != 0 {
                .fatal
            } else if rd_kafka_error_txn_requires_abort(error) != 0 {
                .abortable
            } else if rd_kafka_error_is_retriable(error) != 0 {
                .retriable
            } else {
                .fatal
            }
        code = rd_kafka_error_code(error).rawValue
        text = String(cString: rd_kafka_error_string(error))
    }

    var description: String { text }
}

struct KafkaError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func session(_ opaque: UnsafeMutableRawPointer?) -> KafkaProducer.Session? {
    opaque.map { Unmanaged<KafkaProducer.Session>.fromOpaque($0).takeUnretainedValue() }
}

private let onDeliveryCallback:
    @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
        _, message, opaque in
        guard let session = session(opaque), let message else { return }
        let token = Int(bitPattern: message.pointee._private)
        let code = message.pointee.err.rawValue
        // Rings once the attempt is decided, not once per record.
        let ring = session.state.withLock {
            if code == 0 { $0.lastError = nil }
            $0.recordFailure(token: token, code: code)
            return $0.deliveries.report(token: token, code: code) != .wait
        }
        if ring { session.poke() }
    }

private let onErrorCallback:
    @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
        rk, code, reason, opaque in
        guard let session = session(opaque) else { return }
        let text = reason.map { String(cString: $0) } ?? KafkaProducer.Code.text(code)
        if code == RD_KAFKA_RESP_ERR__FATAL.rawValue, let rk {
            let size = 512
            var message = [CChar](repeating: 0, count: size)
            let cause = rd_kafka_fatal_error(rk, &message, size)
            let fatal = "\(String(cString: rd_kafka_err2name(cause))): \(cText(message))"
            session.update { $0.fatal = fatal }
        } else {
            session.update { $0.lastError = (code, text) }
        }
    }

/// librdkafka's own log lines say what its error callback says too: not repeated on stderr.
private let onLogCallback:
    @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void =
        { _, _, _, _ in }

/// The text librdkafka wrote into `buffer`, up to its terminating zero.
private func cText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
