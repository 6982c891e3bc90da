/// A destination the outbox forwards to (SPEC 3 `sinks`, 5).
public struct SinkConfig: Sendable {
    public var name: String
    public var kind: Kind
    public var types: TypeFilter = .all
    public var batch = Batch()
    public var retry = Retry()
    /// Events per second while draining; nil is unlimited.
    public var rateLimit: Double?

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    public enum Kind: Sendable {
        case http(HTTP)
        case mqtt(MQTT)
        case kafka(Kafka)
    }

    public struct HTTP: Sendable {
        public var url: String
        public var headers: [(name: String, value: String)] = []
        public var bearerToken: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var timeout: Duration = .seconds(10)
        public init(url: String) { self.url = url }
    }

    public struct MQTT: Sendable {
        public var url: String
        public var clientID: String
        public var username: String?
        public var password: String?
        public var topic: String = "plants/{site}/lines/{line}/{type}"
        public var statusTopic: String = "plants/{site}/lines/{line}/agents/{agent}/status"
        public var qos: Int = 1
        public var protocolVersion: Int = 4
        /// Publishes awaiting their PUBACK at once.
        public var maxInflight: Int = 100
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var timeout: Duration = .seconds(10)

        public init(url: String, clientID: String) {
            self.url = url
            self.clientID = clientID
        }
    }

    /// SPEC 3 `sinks[].kafka`, 5.4.
    public struct Kafka: Sendable {
        /// CloudEvents Kafka protocol binding: the event as the value, or `ce_` headers and `data`.
        public enum Mode: String, Sendable { case structured, binary }

        public enum Mechanism: String, Sendable, CaseIterable {
            case plain = "PLAIN"
            case scramSHA256 = "SCRAM-SHA-256"
            case scramSHA512 = "SCRAM-SHA-512"
        }

        public struct SASL: Sendable {
            public var mechanism: Mechanism
            public var username: String
            public var password: String
            public init(mechanism: Mechanism, username: String, password: String) {
                self.mechanism = mechanism
                self.username = username
                self.password = password
            }
        }

        /// `host:port` of the bootstrap brokers.
        public var brokers: [String]
        public var topic = "edge.{site}.events"
        public var mode = Mode.structured
        public var exactlyOnce = false
        public var cursorTopic = "edge-agent.cursors"
        public var compression = "lz4"
        /// TLS to the brokers (the `tls` key is given), with these files or the system's CAs.
        public var tls = false
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var sasl: SASL?
        /// How long the delivery reports of a batch may take; librdkafka's message timeout.
        public var timeout: Duration = .seconds(30)

        public init(brokers: [String]) { self.brokers = brokers }
    }

    public struct Batch: Sendable {
        public var maxEvents = 500
        public var maxBytes: Int64 = 1 << 20
        public var linger: Duration = .milliseconds(100)
        public init() {}
        public init(maxEvents: Int, maxBytes: Int64, linger: Duration) {
            self.maxEvents = maxEvents
            self.maxBytes = maxBytes
            self.linger = linger
        }
    }

    public struct Retry: Sendable, Equatable {
        public var initial: Duration = .milliseconds(500)
        public var max: Duration = .seconds(10)
        public var multiplier: Double = 2
        public init() {}
        public init(initial: Duration, max: Duration, multiplier: Double) {
            self.initial = initial
            self.max = max
            self.multiplier = multiplier
        }
    }
}
