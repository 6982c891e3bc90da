import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// `OutboxWriter.append` builds the envelopes on the caller's side, a chunk at a time, while the
/// writer's thread numbers and inserts them (`EnvelopeHandoff`).
@Suite struct OutboxWriterTests {
    /// Every stored row as its parsed body, the `outbox.created` notice left out.
    func stored(_ opts: OutboxOptions) throws -> [(row: StoredEvent, body: [String: Any])] {
        let claim = try OutboxDatabase.openExisting(opts).claim(
            sink: "mw", filter: .all, maxEvents: 100_000, maxBytes: .max)
        return try claim.events.dropFirst().map { ($0, try parse($0.body)) }
    }

    @Test func concurrentAppendsKeepEachBatchWholeInOrderAndNumberedByTheWriter() async throws {
        let dir = TemporaryDirectory()
        let opts = options(dir)
        let writer = try await OutboxWriter(options: opts)
        // Sizes around the chunk: one event, exactly a chunk, one past it, several chunks.
        let sizes = [1, OutboxWriter.chunk, OutboxWriter.chunk + 1, 3 * OutboxWriter.chunk + 7, 2]
        let producers = 4
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<producers {
                group.addTask {
                    for (b, size) in sizes.enumerated() {
                        let events = (0..<size).map { n in
                            Event(
                                type: .productionCompleted, subject: "press-\(p)",
                                time: Timestamp(milliseconds: 1_795_000_000_000 + Int64(n)),
                                data: ["batch": .int(Int64(p * 100 + b)), "n": .int(Int64(n))])
                        }
                        let range = try #require(try await writer.append(events))
                        #expect(range.count == size)
                    }
                }
            }
            try await group.waitForAll()
        }
        await writer.close()

        let rows = try stored(opts)
        #expect(rows.count == producers * sizes.reduce(0, +))
        #expect(rows.map(\.row.sequence) == Array(2...Int64(rows.count + 1)))
        #expect(Set(rows.map(\.row.id)).count == rows.count)
        for (row, body) in rows {
            #expect(
                body["sequence"] as? String == String(repeating: "0", count: 20 - "\(row.sequence)".count)
                    + "\(row.sequence)")
            #expect(body["id"] as? String == row.id)
        }
        // Each batch is one run of consecutive sequences, its events in the order given.
        var runs: [(batch: Int, ns: [Int])] = []
        for (_, body) in rows {
            let data = try #require(body["data"] as? [String: Any])
            let batch = try #require(data["batch"] as? Int), n = try #require(data["n"] as? Int)
            if runs.last?.batch == batch { runs[runs.count - 1].ns.append(n) } else { runs.append((batch, [n])) }
        }
        #expect(runs.count == producers * sizes.count)
        for run in runs {
            #expect(run.ns == Array(0..<sizes[run.batch % 100]), "batch \(run.batch)")
            #expect(
                (try #require(rows.first { ($0.body["data"] as? [String: Any])?["batch"] as? Int == run.batch }).body[
                    "subject"] as? String) == "press-\(run.batch / 100)")
        }
    }

    @Test func anAppendThatFailsMidwayLeavesNothingAndTheNextIsNumberedOn() async throws {
        let dir = TemporaryDirectory()
        var opts = options(dir)
        let faults = OutboxFaults()
        opts.faults = faults
        let writer = try await OutboxWriter(options: opts)
        faults.fail(.append, times: 1)  // inside the transaction, after every chunk was inserted
        await #expect(throws: SQLiteError.self) {
            try await writer.append((0..<300).map { event(.productionCompleted, $0) })
        }
        let next = try await writer.append((0..<10).map { event(.productionCompleted, $0) })
        #expect(next == 2...11)
        await writer.close()
        let rows = try stored(opts)
        #expect(rows.map(\.row.sequence) == Array(2...11))
        #expect(rows.map { ($0.body["data"] as? [String: Any])?["n"] as? Int } == Array(0..<10))
        #expect(rows.allSatisfy { $0.body["sequence"] as? String == String(format: "%020lld", $0.row.sequence) })
    }

    /// A purge after a long outage runs in bounded steps: an append asked for while it runs is
    /// committed between two steps, not after the last one.
    @Test func anAppendDuringALongPurgeIsNotHeldUntilItEnds() async throws {
        let dir = TemporaryDirectory()
        var opts = options(dir)
        opts.retainDelivered = 0
        let backlog = 12 * OutboxWriter.purgeStep
        do {
            let (db, _) = try OutboxDatabase.openForWriting(opts)
            for start in stride(from: 0, to: backlog, by: 10_000) {
                try db.append((start..<start + 10_000).map { event(.productionCompleted, $0) })
            }
            let claim = try db.claim(sink: "mw", filter: .all, maxEvents: backlog + 1, maxBytes: .max)
            try db.settle(sink: "mw", claim: claim, delivered: claim.events.count, dead: [])
        }
        let writer = try await OutboxWriter(options: opts)
        let purge = Task { try await writer.purgeRetained() }
        // Waits until the purge has begun (the first step took some events), then appends.
        let reader = try OutboxDatabase.openExisting(opts)
        while try reader.db.scalar("SELECT min(seq) FROM events") ?? 0 <= 1 {
            try await Task.sleep(for: .milliseconds(1))
        }
        try await writer.append([event(.productionCompleted, -1)])
        let left = try reader.db.scalar("SELECT count(*) FROM events") ?? 0
        #expect(try await purge.value == backlog + 1)
        #expect(left > 2, "the append committed while \(left) delivered events were still to purge")
        await writer.close()
    }
}
