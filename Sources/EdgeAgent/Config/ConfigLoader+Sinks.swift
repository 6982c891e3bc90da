import EdgeAgentCore
import Foundation

extension ConfigLoader {
    static func parseSink(_ node: ConfigNode, _ path: String, _ reader: ConfigReader) -> SinkConfig? {
        let keys = ["name", "http", "mqtt", "kafka", "types", "batch", "retry", "rate_limit"]
        guard let m = MapNode(node, path: path, reader: reader, allowed: keys) else { return nil }
        let name = m.string("name", required: true)
        if [m.has("http"), m.has("mqtt"), m.has("kafka")].filter({ $0 }).count != 1 {
            reader.report(m.node, m.sub("http"), "give exactly one of 'http', 'mqtt' or 'kafka'")
        }
        var kind: SinkConfig.Kind?
        if let h = m.map("http", allowed: ["url", "headers", "bearer_token", "bearer_token_file", "tls", "timeout"]) {
            if let url = h.string("url", required: true) {
                if let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil {
                    var http = SinkConfig.HTTP(url: url)
                    http.headers = h.pairs("headers").compactMap { pair in
                        // `NAME_file: PATH` reads the value of header NAME from a file, like the other secrets.
                        guard pair.key.hasSuffix("_file") else { return (pair.key, pair.value) }
                        guard let data = FileManager.default.contents(atPath: pair.value),
                            let text = String(data: data, encoding: .utf8)
                        else {
                            reader.report(
                                pair.node, "\(h.sub("headers")).\(pair.key)",
                                "cannot read the secret file \(pair.value)")
                            return nil
                        }
                        return (String(pair.key.dropLast(5)), text.trimmingCharacters(in: .newlines))
                    }
                    http.bearerToken = h.secret("bearer_token")
                    (http.caFile, http.certFile, http.keyFile) = tlsFiles(
                        h, reader, both: "mTLS needs both 'cert_file' and 'key_file'")
                    http.timeout = h.duration("timeout") ?? http.timeout
                    kind = .http(http)
                } else {
                    reader.report(h["url"], h.sub("url"), "expected an http:// or https:// URL, found '\(url)'")
                }
            }
        }
        if let q = m.map(
            "mqtt",
            allowed: [
                "url", "client_id", "username", "password", "password_file", "topic", "status_topic",
                "qos", "protocol", "max_inflight", "tls", "timeout",
            ])
        {
            let url = q.string("url", required: true)
            if let url, !(url.hasPrefix("mqtt://") || url.hasPrefix("mqtts://")) || URL(string: url)?.host == nil {
                reader.report(q["url"], q.sub("url"), "expected an mqtt:// or mqtts:// URL, found '\(url)'")
            }
            let clientID = q.string("client_id", required: true)
            if let url, let clientID {
                var mqtt = SinkConfig.MQTT(url: url, clientID: clientID)
                mqtt.username = q.string("username")
                mqtt.password = q.secret("password")
                mqtt.topic = q.string("topic") ?? mqtt.topic
                mqtt.statusTopic = q.string("status_topic") ?? mqtt.statusTopic
                // SPEC 7: at QoS 0 nothing confirms an event, so "delivered" would mean "written to a socket".
                if let qos = q["qos"]?.string, Int(qos) == 0 {
                    reader.report(
                        q["qos"], q.sub("qos"),
                        "QoS 0 is refused: the broker confirms no event, so a lost one would go unseen; use 1 (or 2)")
                } else {
                    mqtt.qos = q.int("qos", in: 1...2) ?? mqtt.qos
                }
                mqtt.maxInflight = q.int("max_inflight", in: 1...65535) ?? mqtt.maxInflight
                mqtt.timeout = q.duration("timeout") ?? mqtt.timeout
                if let p = q.oneOf("protocol", ["3", "3.1.1", "4", "5"]) { mqtt.protocolVersion = p == "5" ? 5 : 4 }
                (mqtt.caFile, mqtt.certFile, mqtt.keyFile) = tlsFiles(
                    q, reader, both: "a client certificate needs both 'cert_file' and 'key_file'")
                kind = .mqtt(mqtt)
            }
        }
        if let k = m.map(
            "kafka",
            allowed: [
                "brokers", "topic", "mode", "exactly_once", "cursor_topic", "compression", "tls", "sasl", "timeout",
            ])
        {
            kind = parseKafka(k, reader).map { .kafka($0) }
            if case let .kafka(kafka)? = kind, kafka.exactlyOnce, let name, name.contains(".") {
                // `{agent.id}.{sink}` must name one agent's sink: agent `plant.line7` and sink `k`
                // would share the cursor records and the producer of agent `plant` and sink `line7.k`.
                reader.report(
                    m["name"], m.sub("name"),
                    "with kafka.exactly_once the name must not hold '.': '{agent.id}.{sink}' names the sink's transactional producer and cursor records, found '\(name)'"
                )
            }
        }
        var sink = SinkConfig(name: name ?? "", kind: kind ?? .http(.init(url: "")))
        if let types = m.strings("types") {
            for (i, pattern) in types.enumerated()
            where !EventType.all.contains(where: { TypeFilter([pattern]).matches($0.name) }) {
                reader.report(m.list("types")[i].node, m.sub("types[\(i)]"), "'\(pattern)' matches no event type")
            }
            sink.types = TypeFilter(types)
        }
        if let b = m.map("batch", allowed: ["max_events", "max_bytes", "linger"]) {
            sink.batch.maxEvents = b.int("max_events", in: 1...100_000) ?? sink.batch.maxEvents
            sink.batch.maxBytes = b.size("max_bytes", minimum: 1024) ?? sink.batch.maxBytes
            sink.batch.linger = b.duration("linger", positive: false) ?? sink.batch.linger
        }
        if case .mqtt = kind {
            // A batch's MQTT message ids (1 to 65,535) must not wrap: libmosquitto would drop the older message.
            sink.batch.maxEvents = min(sink.batch.maxEvents, MQTTAcknowledgementStateMachine.maximumBatch)
        }
        if let r = m.map("retry", allowed: ["initial", "max", "multiplier"]) {
            sink.retry.initial = r.duration("initial") ?? sink.retry.initial
            sink.retry.max = r.duration("max") ?? sink.retry.max
            if let mult = r.double("multiplier") {
                if mult >= 1 {
                    sink.retry.multiplier = mult
                } else {
                    reader.report(r["multiplier"], r.sub("multiplier"), "must be at least 1")
                }
            }
            if sink.retry.max < sink.retry.initial {
                reader.report(r.node, r.sub("max"), "'max' must not be less than 'initial'")
            }
        }
        if let text = m.string("rate_limit") {
            if let rate = ConfigValues.rate(text) {
                sink.rateLimit = rate
            } else {
                reader.report(
                    m["rate_limit"], m.sub("rate_limit"), "expected events per second such as '2000/s', found '\(text)'"
                )
            }
        }
        guard name != nil, kind != nil else { return nil }
        return sink
    }

    /// `sinks[].kafka` (SPEC 3, 5.4); nil when something required is missing or wrong.
    static func parseKafka(_ k: MapNode, _ reader: ConfigReader) -> SinkConfig.Kafka? {
        var valid = true
        let brokers = k.strings("brokers") ?? []
        if !k.has("brokers") || brokers.isEmpty {
            reader.report(k["brokers"] ?? k.node, k.sub("brokers"), "give at least one broker as HOST:PORT")
            valid = false
        }
        for (i, broker) in k.list("brokers").enumerated() where i < brokers.count && HostPort(brokers[i]) == nil {
            reader.report(broker.node, broker.path, "expected HOST:PORT, found '\(brokers[i])'")
            valid = false
        }
        var kafka = SinkConfig.Kafka(brokers: brokers)
        if let topic = k.string("topic") {
            if topic.isEmpty {
                reader.report(k["topic"], k.sub("topic"), "the topic must not be empty")
                valid = false
            }
            kafka.topic = topic
        }
        if let mode = k.oneOf("mode", ["structured", "binary"]) { kafka.mode = .init(rawValue: mode)! }
        if let once = k.oneOf("exactly_once", ["true", "false"]) { kafka.exactlyOnce = once == "true" }
        if let topic = k.string("cursor_topic") {
            if KafkaTopic.name(topic) != topic || topic.isEmpty {
                reader.report(
                    k["cursor_topic"], k.sub("cursor_topic"),
                    "a topic name takes only A-Z a-z 0-9 . _ -, found '\(topic)'")
                valid = false
            }
            kafka.cursorTopic = topic
        }
        kafka.compression = k.oneOf("compression", ["none", "gzip", "snappy", "lz4", "zstd"]) ?? kafka.compression
        kafka.tls = k.has("tls")
        (kafka.caFile, kafka.certFile, kafka.keyFile) = tlsFiles(
            k, reader, both: "a client certificate needs both 'cert_file' and 'key_file'")
        if let s = k.map("sasl", allowed: ["mechanism", "username", "password", "password_file"]) {
            let mechanism = s.oneOf("mechanism", SinkConfig.Kafka.Mechanism.allCases.map(\.rawValue), required: true)
            let username = s.string("username", required: true)
            let password = s.secret("password")
            if password == nil, !s.has("password"), !s.has("password_file") { s.missing("password_file") }
            if let mechanism, let username, let password {
                kafka.sasl = .init(mechanism: .init(rawValue: mechanism)!, username: username, password: password)
            } else {
                valid = false
            }
        }
        kafka.timeout = k.duration("timeout") ?? kafka.timeout
        if kafka.timeout < .seconds(1) {
            reader.report(k["timeout"], k.sub("timeout"), "must be at least 1s (librdkafka's message timeout)")
            valid = false
        }
        return valid ? kafka : nil
    }

    /// A sink's `tls` mapping (HTTP and MQTT alike): the files, each readable and parsed as what it
    /// is, a certificate with its key. Parsed here so that `check` finds a bad PEM, and a reload
    /// refuses it before the running sinks stop (SPEC 6).
    static func tlsFiles(_ sink: MapNode, _ reader: ConfigReader, both: String) -> (
        ca: String?, cert: String?, key: String?
    ) {
        guard let tls = sink.map("tls", allowed: ["ca_file", "cert_file", "key_file"]) else { return (nil, nil, nil) }
        let files = (tls.string("ca_file"), tls.string("cert_file"), tls.string("key_file"))
        if (files.1 == nil) != (files.2 == nil) { reader.report(tls.node, tls.sub("cert_file"), both) }
        for key in ["ca_file", "cert_file", "key_file"] {
            guard let file = tls.string(key) else { continue }
            if !FileManager.default.isReadableFile(atPath: file) {
                reader.report(tls[key], tls.sub(key), "cannot read \(file)")
            } else if let problem = TLSFile.problem(file, key == "key_file" ? .privateKey : .certificates) {
                reader.report(tls[key], tls.sub(key), problem)
            }
        }
        return files
    }
}
