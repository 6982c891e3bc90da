/// The whole configuration file (SPEC 3), validated.
public struct AgentConfig: Sendable {
    public var file: String
    public var agent: Agent
    public var devices: [DeviceConfig] = []
    public var historian: [HistorianConfig] = []
    public var machines: [MachineConfig] = []
    public var sinks: [SinkConfig] = []
    public var outbox: Outbox

    public struct Agent: Sendable {
        public var id: String
        public var site: String
        public var line: String
        public var dataDir: String
        /// The status/metrics listener; nil when `off`.
        public var httpListen: String?

        public init(id: String, site: String, line: String, dataDir: String, httpListen: String? = nil) {
            self.id = id
            self.site = site
            self.line = line
            self.dataDir = dataDir
            self.httpListen = httpListen
        }
    }

    public struct Outbox: Sendable {
        public var sync: OutboxOptions.SyncMode = .full
        public var maxSize: Int64 = 1 << 30
        public var retainDelivered: Duration = .seconds(24 * 3600)
    }

    /// The CloudEvents `source` of every event this agent appends.
    /// Every device tag by its `DEVICE.TAG` name (the first, if a config names one twice).
    public var deviceTags: [String: TagConfig] {
        Dictionary(devices.flatMap { device in device.tags.map { (device.qualifiedName($0), $0) } }, uniquingKeysWith: { first, _ in first })
    }

    public var source: String { "/sites/\(agent.site)/lines/\(agent.line)/agents/\(agent.id)" }

    public var outboxOptions: OutboxOptions {
        OutboxOptions(directory: agent.dataDir, agentID: agent.id, source: source, sync: outbox.sync,
                      maxSize: outbox.maxSize, retainDelivered: outbox.retainDelivered.milliseconds,
                      sinks: sinks.map { .init(name: $0.name, filter: $0.types) })
    }
}

extension Duration {
    public var milliseconds: Int64 {
        let (s, a) = components
        return s * 1000 + a / 1_000_000_000_000_000
    }
    public var seconds: Double { Double(milliseconds) / 1000 }
}
