import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
/// kill -9 at random moments while the agent appends and forwards to a flaky receiver:
/// nothing committed is lost, no id carries two contents, `sequence` has no gap.
@Suite struct CrashTests {
    @Test func survivesTenKillsWhileAppendingAndForwarding() async throws {
        let dir = TemporaryDirectory()
        let server = try await FaultServer(directory: dir)
        try await server.control(#"{"flaky": 0.2}"#)
        let agent = AgentHarness(sinkURL: server.url, directory: dir)
        let total = 40_000
        var random = SystemRandomNumberGenerator()
        for _ in 1...10 {
            try agent.start(events: total, rate: 4000, batch: 50)
            try await Task.sleep(for: .milliseconds(Int64.random(in: 300...1500, using: &random)))
            await agent.kill9()
        }
        let appendedBeforeEnd = try agent.outboxEvents().count
        #expect(appendedBeforeEnd > 1, "the agent appended nothing before the kills")

        try await server.control(#"{"flaky": 0}"#)
        try agent.start(events: total, rate: 0, batch: 500)
        var check = DeliveryCheck([])
        let drained = await eventually(timeout: .seconds(120), every: .milliseconds(500)) {
            check = DeliveryCheck((try? await server.received().events) ?? [])
            return check.uniqueIDs.count == total + 1
        }
        #expect(await agent.stop() == 0)
        #expect(drained, "receiver has \(check.uniqueIDs.count) of \(total + 1)")

        let outbox = try agent.outboxEvents()
        #expect(outbox.map(\.sequence) == Array(1...Int64(total + 1)), "sequence has a gap or a repeat")
        let missing = outbox.filter { !check.uniqueIDs.contains($0.id) }
        #expect(missing.isEmpty, "\(missing.count) committed events never reached the receiver")
        #expect(check.idsWithTwoContents.isEmpty, "ids with two contents: \(check.idsWithTwoContents.prefix(5))")
        // The generated stream is exactly 1...total: no value appended twice, none skipped, across 10 crashes.
        let values = outbox.dropFirst().compactMap { event -> Int? in
            guard let range = event.body.range(of: #""value":"#) else { return nil }
            return Int(event.body[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(values == Array(1...total))
        await server.stop()
    }
}
}
