/// The whole configuration file (SPEC 3), validated.
public struct AgentConfig: Sendable {
    public var file: String
    public var agent: Agent
    public var devices: [DeviceConfig] = []
    public var historian: [HistorianConfig] = []
    public var machines: [MachineConfig] = []
    public var sinks: [SinkConfig] = []
    public var outbox: Outbox

    public init(file: String, agent: Agent, outbox: Outbox = Outbox()) {
        self.file = file
        self.agent = agent
        self.outbox = outbox
    }

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
        /// `outbox.sync`: SQLite's `synchronous` mode.
        public enum Sync: String, Sendable { case full, normal }

        public var sync: Sync = .full
        public var maxSize: Int64 = 1 << 30
        public var retainDelivered: Duration = .seconds(24 * 3600)
        public init() {}
    }

    /// Every device tag by its `DEVICE.TAG` name (the first, if a config names one twice).
    public var deviceTags: [String: TagConfig] {
        Dictionary(
            devices.flatMap { device in device.tags.map { (device.qualifiedName($0), $0) } },
            uniquingKeysWith: { first, _ in first })
    }

    /// The CloudEvents `source` of every event this agent appends.
    public var source: String { "/sites/\(agent.site)/lines/\(agent.line)/agents/\(agent.id)" }
}

extension Duration {
    public var milliseconds: Int64 {
        let (s, a) = components
        return s * 1000 + a / 1_000_000_000_000_000
    }
    public var seconds: Double { Double(milliseconds) / 1000 }
}
