import EdgeAgentCore
import Synchronization

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
    /// Shared by concurrent appends (pipeline, historian): the UUIDv7 generator keeps its state.
    private let encoder: Mutex<EnvelopeEncoder>

    /// Opens (integrity check, migrations, quarantine) on the writer's own thread: a quick_check
    /// of a large outbox never stalls the cooperative pool.
    public init(options: OutboxOptions) async throws {
        lock = try DataDirectoryLock(directory: options.directory)
        database = try await Confined(opening: { try OutboxDatabase.openForWriting(options).0 })
        (report, storedState) = try await database.run { ($0.openReport, try $0.loadState()) }
        self.options = options
        encoder = Mutex(EnvelopeEncoder(source: options.source))
    }

    /// Appends `events` with the producers' `state` in one transaction, then wakes the forwarders
    /// if there were events. The envelopes are built by a child task a chunk at a time while the
    /// writer's thread inserts the chunks before (`EnvelopeHandoff`); the writer's job is queued
    /// first, so the child runs at the latest on the thread this task leaves when it waits.
    @discardableResult
    public func append(_ events: [Event], state: [StateRow] = [], file: FileRecord? = nil)
        async throws -> ClosedRange<Int64>?
    {
        let now = Timestamp.now()
        let handoff = EnvelopeHandoff()
        async let encoded: Void = encode(events, recorded: now, to: handoff)
        let stored = try await database.run {
            try $0.append(events, state: state, file: file, now: now, encoded: handoff)
        }
        await encoded
        if stored != nil { doorbell.ring() }
        return stored
    }

    private func encode(_ events: [Event], recorded: Timestamp, to handoff: EnvelopeHandoff) async {
        defer { handoff.finish() }
        var size = 0
        for start in stride(from: 0, to: events.count, by: Self.chunk) {
            var chunk = EncodedEvents(capacity: Self.chunk, bytes: size)
            encoder.withLock { encoder in
                for event in events[start..<min(start + Self.chunk, events.count)] {
                    encoder.encode(event, recorded: recorded, into: &chunk)
                }
            }
            size = chunk.bytes.count
            handoff.send(chunk)
        }
    }

    /// Events per handed-off chunk: small enough that the writer starts inserting early, large
    /// enough that the hand-offs cost nothing next to the inserts.
    static let chunk = 64

    /// Records what a sink did with a claimed batch: started on the writer's thread at once, its
    /// result taken when the caller needs it (a forwarder delivers the next batch meanwhile).
    /// Runs to its end even when the caller is cancelled (a stop that came while the sink
    /// answered): else the sink would be sent the batch again after the restart. Only the
    /// caller's retries, not an attempt asked for, end at a stop.
    public func settle(sink: String, claim: Claim, delivered: Int, dead: [DeadLetter]) -> Pending<Void> {
        database.start { try $0.settle(sink: sink, claim: claim, delivered: delivered, dead: dead) }
    }

    /// Purges the delivered events past retention, a bounded step per transaction: the appends
    /// and settlements queued meanwhile run between the steps, so a purge after a long outage
    /// never holds acquisition up for longer than one step.
    @discardableResult
    public func purgeRetained() async throws -> Int {
        var total = 0
        while true {
            let purged = try await database.run { try $0.purgeRetained(limit: Self.purgeStep) }
            total += purged
            if purged < Self.purgeStep { return total }
        }
    }

    /// Events purged per transaction.
    static let purgeStep = 5000

    public func close() async {
        await database.shutdown()
        lock.release()
    }
}
