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

    /// Commits of many pages in a row (a historian's chunks) keep the WAL within its budget and
    /// one commit: the thread's checkpoints alone never let SQLite start the WAL over while the
    /// writer keeps committing, the writer's own at the budget does.
    @Test func largeCommitsInARowKeepTheWALWithinItsBudget() throws {
        let dir = TemporaryDirectory()
        let opts = options(dir, maxSize: 256 << 20)
        #expect(opts.walPages == 1000)
        let (db, _) = try OutboxDatabase.openForWriting(opts)
        let bulk = String(repeating: "x", count: 1000)
        var largest: Int64 = 0, commitFrames: Int64 = 0
        for commit in 0..<40 {
            let before = Self.walFrames(opts)
            try db.append(
                (0..<800).map { n in
                    var e = event(.productionCompleted, commit * 800 + n)
                    e.data = ["quantity": .int(1), "note": .string(bulk)]
                    return e
                })
            let after = Self.walFrames(opts)
            commitFrames = max(commitFrames, after - before)
            largest = max(largest, after)
        }
        #expect(commitFrames > 300 && commitFrames < 1000)
        #expect(largest <= 1000 + commitFrames, "WAL at most its budget (1,000 pages) and one commit")
    }
}
