import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

@Suite struct OutboxCheckpointerTests {
    /// Frames in the WAL file (its header, then a 24-byte header and a page per frame).
    static func walFrames(_ options: OutboxOptions) -> Int64 {
        max(0, OutboxDatabase.fileSize(options.databasePath + "-wal") - 32) / (4096 + 24)
    }

    /// Appends one event per commit until the WAL holds at least `frames` frames.
    static func fill(_ db: OutboxDatabase, to frames: Int64) throws {
        var n = 0
        while walFrames(db.options) < frames {
            n += 1
            try db.append([event(.productionCompleted, n)])
        }
    }

    @Test func aWALNearlyFullIsCheckpointedBesideTheWriter() async throws {
        let dir = TemporaryDirectory()
        let opts = options(dir, maxSize: 2 << 20)
        #expect(opts.walPages == 64)
        let (db, _) = try OutboxDatabase.openForWriting(opts)
        let opened = OutboxDatabase.fileSize(opts.databasePath)
        try Self.fill(db, to: 49)
        #expect(Self.walFrames(opts) < 64)  // the writer's own checkpoint has not come yet
        let copied = await eventually { OutboxDatabase.fileSize(opts.databasePath) > opened }
        #expect(copied)
        let events = try db.claim(sink: "mw", filter: .all, maxEvents: 1000, maxBytes: 1 << 30).events
        #expect(events.map(\.sequence) == Array(1...Int64(events.count)))
    }

    @Test func theWriterStillCheckpointsAWALAtItsBudget() throws {
        let dir = TemporaryDirectory()
        let opts = options(dir, maxSize: 2 << 20)
        let (db, _) = try OutboxDatabase.openForWriting(opts)
        db.checkpointer?.stop()  // as if its thread never got to run
        let opened = OutboxDatabase.fileSize(opts.databasePath)
        try Self.fill(db, to: 48)
        #expect(OutboxDatabase.fileSize(opts.databasePath) == opened)
        try Self.fill(db, to: 64)
        #expect(OutboxDatabase.fileSize(opts.databasePath) > opened)
    }
}
