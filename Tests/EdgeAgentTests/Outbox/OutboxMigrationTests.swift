import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

/// Fixtures/outbox-v1.db was written by the first release (schema 1): 21 events, sequence 8
/// dead-lettered by sink `mw` with a 422. Every later release must open it as it was.
@Suite struct OutboxMigrationTests {
    @Test func opensTheFirstReleasesDatabase() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.path + "/data", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("outbox-v1.db"), toPath: dir.path + "/data/outbox.db")
        _ = FileManager.default.createFile(atPath: dir.path + "/data/.outbox-created", contents: nil)
        var opts = options(dir)
        opts.source = "/sites/plant/lines/line-1/agents/v1-agent"
        let (db, report) = try OutboxDatabase.openForWriting(opts)
        #expect(report.createdReason == nil && report.quarantinedTo == nil)
        #expect(try db.loadState()["test_source.appended"] == "20")
        let dead = try db.deadEvents()
        #expect(dead.map(\.sequence) == [8] && dead[0].status == 422 && dead[0].sink == "mw")
        let status = try db.status()
        #expect(status.sinks["mw"]?.delivered == 20 && status.sinks["mw"]?.pending == 0)
        #expect(try db.append([event()]) == 22...22, "the sequence goes on where the old release left it")
        #expect(try db.retryDead() == 1)
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20).events.first?.id == dead[0].id)
    }
}
