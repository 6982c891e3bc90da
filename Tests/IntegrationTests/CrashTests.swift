import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// kill -9 at random moments while the agent appends and forwards to a flaky receiver:
    /// nothing committed is lost, no id carries two contents, `sequence` has no gap.
    @Suite struct CrashTests {
        struct Figures: CustomStringConvertible {
            var cycles = 0, total = 0, received = 0, missing = 0, idsWithTwoContents = 0, pausedRuns = 0,
                wallSeconds = 0.0
            var description: String {
                "\(cycles) kill -9 cycles, \(total) events generated, \(received) received, \(missing) missing, "
                    + "\(pausedRuns) runs paused by a full outbox, "
                    + "\(idsWithTwoContents) ids with two contents, wall time \(Int(wallSeconds)) s"
            }
        }

        /// `cycles` kill -9 at random moments while `total` events of `type` are generated at `rate`
        /// into an outbox of `maxSize` forwarding to a receiver that fails 20% of requests; then a
        /// clean run to the end and every check a deduplicating consumer would make.
        static func killCycles(
            _ cycles: Int, total: Int, rate: Double, type: String = "tag.changed",
            maxSize: String? = nil
        ) async throws -> Figures {
            let started = ContinuousClock.now
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            try await server.control(#"{"flaky": 0.2}"#)
            let agent = AgentHarness(
                sinkURL: server.url, outbox: maxSize.map { "outbox: { max_size: \($0) }" } ?? "", directory: dir)
            var random = SystemRandomNumberGenerator()
            for cycle in 1...cycles {
                // With a max_size: the receiver answers 503 to everything for the middle third, so the
                // backlog reaches max_size and the source pauses, under the same kills.
                if maxSize != nil, cycle == cycles / 3 {
                    try await server.control(#"{"faults": [{"status": 503, "count": 100000000}]}"#)
                }
                if maxSize != nil, cycle == 2 * cycles / 3 { try await server.control(#"{"faults": []}"#) }
                try agent.start(events: total, rate: rate, batch: 50, type: type)
                try await Task.sleep(for: .milliseconds(Int64.random(in: 300...1500, using: &random)))
                await agent.kill9()
            }
            let appendedBeforeEnd = try agent.outboxEvents().count
            #expect(appendedBeforeEnd > 1, "the agent appended nothing before the kills")

            try await server.control(#"{"flaky": 0}"#)
            try agent.start(events: total, rate: 0, batch: 500, type: type)
            var check = DeliveryCheck([])
            // The receiver's whole log is read each time: less often for a long run.
            let drained = await eventually(timeout: .seconds(600), every: .milliseconds(total > 100_000 ? 5000 : 500)) {
                check = DeliveryCheck((try? await server.received().events) ?? [])
                return check.uniqueIDs.count == total + 1
            }
            #expect(await agent.stop() == 0)
            #expect(drained, "receiver has \(check.uniqueIDs.count) of \(total + 1)")

            // The outbox may have purged delivered events under max_size: check what the receiver saw.
            let sequences = check.firstArrivalSequences.sorted()
            #expect(sequences == Array(1...Int64(total + 1)), "sequence has a gap or a repeat")
            #expect(check.idsWithTwoContents.isEmpty, "ids with two contents: \(check.idsWithTwoContents.prefix(5))")
            // The generated stream is exactly 1...total: no value appended twice, none skipped.
            let values = try await server.received().events.compactMap { event -> Int? in
                guard event["type"] as? String == type, let data = event["data"] as? [String: Any] else { return nil }
                return data["value"] as? Int
            }
            #expect(Set(values) == Set(1...total) && Set(values).count == total)
            await server.stop()
            let pausedRuns = (0...cycles + 1).filter { run in
                ((try? String(contentsOfFile: dir.file("agent-\(run).stderr"), encoding: .utf8)) ?? "").contains(
                    "Outbox full")
            }.count
            if maxSize != nil { #expect(pausedRuns > 0, "the outbox never reached max_size") }
            return Figures(
                cycles: cycles, total: total, received: check.uniqueIDs.count,
                missing: total + 1 - check.uniqueIDs.count,
                idsWithTwoContents: check.idsWithTwoContents.count, pausedRuns: pausedRuns,
                wallSeconds: (ContinuousClock.now - started).seconds)
        }

        @Test func survivesTenKillsWhileAppendingAndForwarding() async throws {
            _ = try await Self.killCycles(10, total: 40_000, rate: 4000)
        }

        /// `make soak`: 100 kill -9 cycles at 4,000 events/s, a 20%-flaky receiver that refuses
        /// everything for the middle third, and an outbox of 2 MiB that the backlog reaches then
        /// (critical events, so the source pauses rather than drops).
        @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGE_SOAK"] == "1"))
        func soakHundredKillsNearMaxSize() async throws {
            let figures = try await Self.killCycles(
                100, total: 200_000, rate: 4000, type: "production.completed", maxSize: "2MiB")
            print("soak: \(figures)")
        }
    }
}
