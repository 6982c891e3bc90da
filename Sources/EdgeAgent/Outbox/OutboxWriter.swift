import EdgeAgentCore

/// The agent's one writing connection, on its own thread: in this process every write (appends,
/// settlements, purges) passes through here; forwarders, the status endpoint and the historian
/// only read, on connections of their own. Another process (`outbox dead retry`, `replay`) may
/// write too: SQLite's lock orders it with ours.
public final class OutboxWriter: Sendable {
    private let database: Confined<OutboxDatabase>
    public let doorbell = Doorbell()
    public let report: OutboxDatabase.OpenReport
    /// The producers' state as stored at start.
    public let storedState: [String: String]
    public let options: OutboxOptions
    private let lock: DataDirectoryLock

    /// Opens (integrity check, migrations, quarantine) on the writer's own thread: a quick_check
    /// of a large outbox never stalls the cooperative pool.
    public init(options: OutboxOptions) async throws {
        lock = try DataDirectoryLock(directory: options.directory)
        database = try await Confined(opening: { try OutboxDatabase.openForWriting(options).0 })
        (report, storedState) = try await database.run { ($0.openReport, try $0.loadState()) }
        self.options = options
    }

    /// Appends `events` with the producers' `state` in one transaction, then wakes the forwarders
    /// if there were events.
    @discardableResult
    public func append(_ events: [Event], state: [StateRow] = [], file: FileRecord? = nil)
        async throws -> ClosedRange<Int64>?
    {
        let stored = try await database.run { try $0.append(events, state: state, file: file) }
        if stored != nil { doorbell.ring() }
        return stored
    }

    public func settle(sink: String, claim: Claim, delivered: Int, dead: [DeadLetter]) async throws {
        try await database.run { try $0.settle(sink: sink, claim: claim, delivered: delivered, dead: dead) }
    }

    @discardableResult
    public func purgeRetained() async throws -> Int {
        try await database.run { try $0.purgeRetained() }
    }

    public func close() async {
        await database.shutdown()
        lock.release()
    }
}
