import EdgeAgentCore
import Foundation
import Synchronization

/// SPEC 5.2: each event published alone, structured CloudEvents JSON (the same bytes the HTTP
/// sink sends in its array), to the topic template, QoS 1 by default; delivered on its PUBACK.
///
/// A batch is published whole (libmosquitto keeps `max_inflight` of it awaiting PUBACK at once)
/// and is delivered when every PUBACK is in. Each event is published once: libmosquitto holds
/// its message until the PUBACK and sends it again itself after a reconnect, so after a timeout
/// or a lost connection the forwarder's next attempt waits for those messages, and publishes
/// only what has none (`MQTTAcknowledgementStateMachine`). A refused connection (bad
/// credentials, not authorised) is a configuration problem: never dead-lettered, `/readyz` fails.
/// Besides the events, a retained status message on `status_topic`: online after each connect,
/// offline published by the broker as the last will when the agent disappears, and by the
/// agent itself on a clean stop.
public final class MQTTSink: EventSink {
    let config: SinkConfig.MQTT
    let client: MQTTClient
    let fill: @Sendable (_ type: String, _ subject: String) -> String
    let statusTopic: String
    let offline: String
    let usesSubject: Bool

    public init(_ config: SinkConfig.MQTT, agent: AgentConfig.Agent, version: String = EdgeAgentVersion.current) throws
    {
        guard let url = URL(string: config.url), let host = url.host else {
            throw MQTTError(operation: "read the URL \(config.url)", code: nil)
        }
        let secure = url.scheme == "mqtts"
        self.config = config
        usesSubject = config.topic.contains("{subject}")
        let values = ["{site}": agent.site, "{line}": agent.line, "{agent}": agent.id]
        fill = { type, subject in
            Self.topic(config.topic, values.merging(["{type}": type, "{subject}": subject]) { $1 })
        }
        statusTopic = Self.topic(config.statusTopic, values)
        let identity = ##""agent":\##(JSONValue.quoted(agent.id)),"version":\##(JSONValue.quoted(version))"##
        offline = ##"{"online":false,\##(identity)}"##
        let online: @Sendable () -> String = {
            ##"{"online":true,\##(identity),"since":"\##(Timestamp.now().rfc3339)"}"##
        }
        var options = MQTTClient.Options(
            host: host, port: url.port ?? (secure ? 8883 : 1883), clientID: config.clientID,
            username: config.username, password: config.password,
            protocolVersion: config.protocolVersion, window: config.maxInflight,
            will: (statusTopic, offline))
        if secure || config.caFile != nil { options.tls = (config.caFile, config.certFile, config.keyFile) }
        client = try MQTTClient(options, status: (statusTopic, online))
    }

    /// The template with `{site} {line} {agent} {type} {subject}` filled in; `/`, `+` and `#`
    /// in a value become `_` (SPEC 7), so a value never adds a level or a wildcard.
    static func topic(_ template: String, _ values: [String: String]) -> String {
        var topic = template
        for (key, value) in values {
            topic = topic.replacingOccurrences(
                of: key, with: String(value.map { $0 == "/" || $0 == "+" || $0 == "#" ? "_" : $0 }))
        }
        return topic
    }

    public func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome {
        let session = client.session
        let (connected, refused) = session.state.withLock { ($0.connected, $0.refused) }
        if let refused {
            return .misconfigured(
                status: Int(refused.code), body: "the broker refused the connection: \(refused.reason)")
        }
        guard connected else { return .retry(.connect, retryAfter: nil) }
        // Only what has no message held: a held one is sent again by libmosquitto, under its id.
        let publish = Set(session.state.withLock { $0.acknowledgements.attempt(events.map(\.sequence)) })
        for event in events where publish.contains(event.sequence) {
            var body = event.body
            let topic = topic(for: event)
            let result = body.withUTF8 { bytes in
                client.publish(
                    topic: topic, payload: UnsafeRawBufferPointer(bytes), qos: config.qos, retain: false,
                    contentType: "application/cloudevents+json")
            }
            switch result {
            case let .success(mid): session.state.withLock { $0.acknowledgements.published(event.sequence, id: mid) }
            case .failure(.tooLarge):
                session.state.withLock { _ = $0.acknowledgements.ended(connected: $0.connected) }
                return events.count == 1 ? .rejected(status: 413, body: "larger than the broker accepts") : .tooLarge
            case .failure(.failed):
                session.state.withLock { _ = $0.acknowledgements.ended(connected: $0.connected) }
                return .retry(.connect, retryAfter: nil)
            }
        }
        // Until every PUBACK is in, one is refused, the connection drops, the timeout passes, or
        // the forwarder stops. What is not acknowledged stays held for the next attempt.
        await session.wait(until: .now + config.timeout) {
            $0.acknowledgements.decision != .wait || !$0.connected
        }
        switch session.state.withLock({ $0.acknowledgements.ended(connected: $0.connected) }) {
        case .delivered: return .delivered
        case let .rejected(sequence, reason):
            return .rejected(
                status: Int(reason), body: "PUBACK reason 0x\(String(reason, radix: 16)) for sequence \(sequence)")
        case let .retry(reason): return .retry(reason, retryAfter: nil)
        case .wait: return .retry(.timeout, retryAfter: nil)
        }
    }

    /// Topics by (type, subject), filled once: a line has a handful. The subject is read from
    /// the envelope only when the template uses it.
    private let topics = Mutex<[String: String]>([:])

    func topic(for event: StoredEvent) -> String {
        let subject = usesSubject ? EnvelopeSubject.of(event.body) : ""
        let key = usesSubject ? event.type + "\u{0}" + subject : event.type
        if let known = topics.withLock({ $0[key] }) { return known }
        let topic = fill(event.type, subject)
        topics.withLock { $0[key] = topic }
        return topic
    }

    /// libmosquitto reconnects by itself every second: the sink is back when it is connected.
    public func probe() async -> Bool { client.session.state.withLock { $0.connected } }

    /// A clean stop: offline on the status topic (retained), then disconnect.
    public func shutdown() async {
        if client.session.state.withLock({ $0.connected }) {
            var offline = self.offline
            let published = offline.withUTF8 {
                client.publish(
                    topic: statusTopic, payload: UnsafeRawBufferPointer($0), qos: 1, retain: true,
                    contentType: "application/json")
            }
            if case let .success(mid) = published {
                client.session.state.withLock { $0.acknowledgements.published(nil, id: mid) }
                await client.session.wait(until: .now + .seconds(2)) {
                    $0.acknowledgements.acknowledged(id: mid) || !$0.connected
                }
            }
        }
        await client.close()
    }
}
