import CMosquitto
import EdgeAgentCore
import Foundation
import Synchronization

/// libmosquitto, wrapped once: the only file that imports it.
///
/// The client has its own network thread that drives libmosquitto (`mosquitto_loop`): it
/// connects, keeps the session alive, and reconnects every second while the broker is away,
/// refuses the credentials or fails the TLS handshake (libmosquitto's own `loop_start` thread
/// gives up for good on those, so a password fixed on the broker would never be seen).
/// Publishing only queues a packet for that thread (`mosquitto_threaded_set`), so it never
/// blocks the caller.
///
/// Callbacks run on libmosquitto's thread and cannot capture: they reach Swift through the
/// `Session` passed as userdata, a `Sendable` class whose state sits behind a `Mutex`. It is
/// retained when handed to libmosquitto and released only after `mosquitto_loop_stop` and
/// `mosquitto_destroy` in `close()`, so libmosquitto never calls into a freed object.
/// `@unchecked Sendable` is safe: `handle` is used only through libmosquitto's thread-safe
/// calls (publish, disconnect) until `close()`, which the owner calls once, last.
final class MQTTClient: @unchecked Sendable {
    struct Options: Sendable {
        var host: String
        var port: Int
        var clientID: String
        var username: String?
        var password: String?
        var tls: (ca: String?, cert: String?, key: String?)?
        var protocolVersion: Int
        /// QoS 1/2 publishes in flight at once (MQTT 5: capped by the broker's receive maximum).
        var window: Int
        var will: (topic: String, payload: String)?
        var keepalive: Int32 = 30
    }

    /// What the network thread tells the rest of the sink.
    struct SessionState {
        var connected = false
        /// The broker's refusal of the last connect (CONNACK code), until a connect succeeds.
        var refused: (code: Int32, reason: String)?
        var connects = 0
        /// Which event each message libmosquitto holds is for, and what the broker said of
        /// it. The session rings when an attempt is decided (its last PUBACK, a refusal),
        /// not once per acknowledgement.
        var acknowledgements = MQTTAcknowledgementStateMachine()
    }

    /// The session's state, changed on the network thread and waited on by the sink (`Watched`).
    final class Session: Watched<SessionState>, @unchecked Sendable {
        /// Called on the network thread after each successful connect, with the handle the
        /// callback got (the status message is published from there); returns its message id.
        let onConnect: @Sendable (OpaquePointer) -> Int32?

        init(onConnect: @escaping @Sendable (OpaquePointer) -> Int32?) {
            self.onConnect = onConnect
            super.init(SessionState())
        }
    }

    enum PublishError: Error, Equatable {
        case tooLarge
        case failed(String)
    }

    private let handle: OpaquePointer
    private let userdata: Unmanaged<Session>
    let session: Session
    let protocolVersion: Int
    private let closed = Mutex(false)
    /// Set to stop the network thread.
    private let stopping = Atomic<Bool>(false)
    /// The network thread's life, which `close()` waits out: the thread ends it as its last act.
    private let thread = ThreadEnd()

    private static let library: Void = { mosquitto_lib_init() }()

    /// `status`: a retained message published (QoS 1) after every connect.
    init(_ options: Options, status: (topic: String, payload: @Sendable () -> String)?) throws {
        _ = Self.library
        session = Session(onConnect: { mosq in
            guard let status else { return nil }
            let payload = status.payload()
            var mid: Int32 = 0
            let rc = mosquitto_publish(mosq, &mid, status.topic, Int32(payload.utf8.count), payload, 1, true)
            return rc == MOSQ_ERR_SUCCESS.rawValue ? mid : nil
        })
        userdata = Unmanaged.passRetained(session)
        protocolVersion = options.protocolVersion
        // clean_session false: a persistent session under the configured client id.
        guard let mosq = mosquitto_new(options.clientID, false, userdata.toOpaque()) else {
            userdata.release()
            throw MQTTError(operation: "create the client", code: MOSQ_ERR_NOMEM.rawValue, systemErrno: errno)
        }
        handle = mosq
        do {
            try configure(options)
        } catch {
            mosquitto_destroy(mosq)
            userdata.release()
            throw error
        }
    }

    private func configure(_ options: Options) throws {
        func check(_ rc: Int32, _ what: String) throws {
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw MQTTError(operation: what, code: rc, systemErrno: rc == MOSQ_ERR_ERRNO.rawValue ? errno : nil)
            }
        }
        try check(
            mosquitto_int_option(
                handle, MOSQ_OPT_PROTOCOL_VERSION,
                Int32(options.protocolVersion == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311)), "protocol")
        if options.protocolVersion == 5 {
            try check(mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, Int32(options.window)), "window")
        } else {
            try check(mosquitto_max_inflight_messages_set(handle, UInt32(options.window)), "window")
        }
        // A batch ends with a small write and then waits for its PUBACKs: without this, Nagle
        // holds that write until the broker's delayed ACK, once a batch.
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "TCP_NODELAY")
        if options.username != nil || options.password != nil {
            try check(mosquitto_username_pw_set(handle, options.username, options.password), "username")
        }
        if let tls = options.tls {
            // Verification on: the broker's chain must lead to the CA (or the system's), and its name must match.
            try check(
                mosquitto_tls_set(handle, tls.ca, tls.ca == nil ? "/etc/ssl/certs" : nil, tls.cert, tls.key, nil),
                "TLS files")
            try check(mosquitto_tls_opts_set(handle, 1, nil, nil), "TLS options")
            try check(mosquitto_tls_insecure_set(handle, false), "TLS hostname check")
        }
        if let will = options.will {
            try check(
                mosquitto_will_set(handle, will.topic, Int32(will.payload.utf8.count), will.payload, 1, true),
                "last will")
        }
        try check(mosquitto_threaded_set(handle, true), "threads")
        mosquitto_connect_v5_callback_set(handle, onConnectCallback)
        mosquitto_disconnect_v5_callback_set(handle, onDisconnectCallback)
        mosquitto_publish_v5_callback_set(handle, onPublishCallback)
        let network = Thread { [self] in
            networkLoop(host: options.host, port: Int32(options.port), keepalive: options.keepalive)
        }
        network.name = "mqtt-\(options.clientID)"
        network.start()
    }

    /// The network thread: connect, run the loop until it fails, wait a second, reconnect.
    private func networkLoop(host: String, port: Int32, keepalive: Int32) {
        defer { thread.ended() }
        var rc = mosquitto_connect_async(handle, host, port, keepalive)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            if rc == MOSQ_ERR_SUCCESS.rawValue {
                rc = mosquitto_loop(handle, 100, 1)
                continue
            }
            session.update { $0.connected = false }
            for _ in 0..<10 where !stopping.load(ordering: .sequentiallyConsistent) { usleep(100_000) }
            if stopping.load(ordering: .sequentiallyConsistent) { break }
            rc = mosquitto_reconnect_async(handle)
        }
        // A clean disconnect (the broker discards the will), flushed by a last few loops.
        mosquitto_disconnect(handle)
        for _ in 0..<5 { _ = mosquitto_loop(handle, 20, 1) }
    }

    /// Queues one message; returns its message id (acknowledged through `session`). libmosquitto
    /// holds a QoS 1/2 message from here until its PUBACK, through reconnects; while it is not
    /// connected it says so but holds the message all the same and sends it once connected.
    func publish(topic: String, payload: UnsafeRawBufferPointer, qos: Int, retain: Bool, contentType: String?)
        -> Result<Int32, PublishError>
    {
        var mid: Int32 = 0
        var properties: OpaquePointer?
        defer { if properties != nil { mosquitto_property_free_all(&properties) } }
        if protocolVersion == 5, let contentType {
            mosquitto_property_add_string(&properties, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), contentType)
        }
        let rc = mosquitto_publish_v5(
            handle, &mid, topic, Int32(payload.count), payload.baseAddress, Int32(qos), retain, properties)
        switch rc {
        case MOSQ_ERR_SUCCESS.rawValue, MOSQ_ERR_NO_CONN.rawValue, MOSQ_ERR_CONN_LOST.rawValue: return .success(mid)
        case MOSQ_ERR_PAYLOAD_SIZE.rawValue, MOSQ_ERR_OVERSIZE_PACKET.rawValue: return .failure(.tooLarge)
        default: return .failure(.failed(String(cString: mosquitto_strerror(rc))))
        }
    }

    /// Stops the network thread (which disconnects cleanly: the broker does not send the will),
    /// frees the client, then lets go of the session: in that order, so no callback finds it gone.
    /// The owner calls it once, last; the network thread holds the client until then.
    func close() async {
        guard
            closed.withLock({ done in
                defer { done = true }
                return !done
            })
        else { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        // The thread ends within its last loops (a few hundred ms: libmosquitto's calls here do
        // not block). The wait holds through cancellation, for the client must outlive the thread.
        await thread.wait()
        mosquitto_destroy(handle)
        userdata.release()
    }
}

private func session(_ userdata: UnsafeMutableRawPointer?) -> MQTTClient.Session? {
    userdata.map { Unmanaged<MQTTClient.Session>.fromOpaque($0).takeUnretainedValue() }
}

private let onConnectCallback:
    @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, Int32, OpaquePointer?) -> Void = {
        mosq, userdata, rc, _, _ in
        guard let session = session(userdata), let mosq else { return }
        if rc == 0 {
            session.update {
                $0.connected = true
                $0.refused = nil
                $0.connects += 1
            }
            if let mid = session.onConnect(mosq) {
                session.state.withLock { $0.acknowledgements.published(nil, id: mid) }
            }
        } else {
            let reason =
                rc < 6 ? String(cString: mosquitto_connack_string(rc)) : String(cString: mosquitto_reason_string(rc))
            session.update {
                $0.connected = false
                $0.refused = (rc, reason)
            }
        }
    }

private let onDisconnectCallback:
    @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, OpaquePointer?) -> Void = { _, userdata, _, _ in
        session(userdata)?.update { $0.connected = false }
    }

private let onPublishCallback:
    @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, Int32, OpaquePointer?) -> Void = {
        _, userdata, mid, reason, _ in
        guard let session = session(userdata) else { return }
        // An event's PUBACK rings once its attempt is decided; a status message's, always.
        let ring = session.state.withLock { $0.acknowledgements.acknowledged(id: mid, reason: reason) != .wait }
        if ring { session.poke() }
    }
