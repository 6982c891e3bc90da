import EdgeAgentCore

/// What the outbox needs to know from the configuration.
public struct OutboxOptions: Sendable {
    public typealias SyncMode = AgentConfig.Outbox.Sync

    public var directory: String
    public var agentID: String
    public var source: String
    public var sync: SyncMode
    public var maxSize: Int64
    public var retainDelivered: Int64
    public var sinks: [SinkCursor]
    /// Tests only: failures to inject.
    public var faults: (any OutboxFaultInjection)?

    public struct SinkCursor: Sendable {
        public var name: String
        public var filter: TypeFilter
        public init(name: String, filter: TypeFilter) {
            self.name = name
            self.filter = filter
        }
    }

    public init(
        directory: String, agentID: String, source: String, sync: SyncMode = .full,
        maxSize: Int64 = 1 << 30, retainDelivered: Int64 = 24 * 3_600_000, sinks: [SinkCursor] = []
    ) {
        self.directory = directory
        self.agentID = agentID
        self.source = source
        self.sync = sync
        self.maxSize = maxSize
        self.retainDelivered = retainDelivered
        self.sinks = sinks
    }

    public var databasePath: String { directory + "/outbox.db" }
    /// The WAL's budget in 4 KiB pages: SQLite checkpoints at it and truncates the WAL back to it,
    /// so the data gets the rest of `maxSize`.
    var walPages: Int64 { max(64, min(1000, maxSize / 4096 / 8)) }
    var walBytes: Int64 { walPages * 4096 }
    /// Left beside the database when it is first created: a later start that finds the marker
    /// but no database knows the outbox went `missing`, not that this is a `first_start`.
    var markerPath: String { directory + "/.outbox-created" }
    /// Written when the integrity check finds the database damaged: the next open quarantines it.
    var damagedPath: String { directory + "/outbox.damaged" }
}

extension AgentConfig {
    public var outboxOptions: OutboxOptions {
        OutboxOptions(
            directory: agent.dataDir, agentID: agent.id, source: source, sync: outbox.sync,
            maxSize: outbox.maxSize, retainDelivered: outbox.retainDelivered.milliseconds,
            sinks: sinks.map { .init(name: $0.name, filter: $0.types) })
    }
}
