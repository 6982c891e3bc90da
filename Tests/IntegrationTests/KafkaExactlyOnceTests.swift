import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// `exactly_once: true` against librdkafka's mock cluster: each batch with its cursor record in
    /// one transaction, and nothing Kafka committed sent again.
    @Suite struct KafkaExactlyOnceTests {
        typealias Seen = KafkaDeliveryTests.Seen
        static let topic = KafkaDeliveryTests.topic
        static let cursors = "edge-agent.cursors"

        static func sink(_ cluster: KafkaMockCluster, timeout: String = "4s") -> String {
            KafkaDeliveryTests.sink(cluster, timeout: timeout, extra: ", exactly_once: true")
        }

        static func cluster(_ dir: TemporaryDirectory) async throws -> KafkaMockCluster {
            let cluster = try await KafkaDeliveryTests.cluster(dir)
            try await cluster.command("topic \(cursors) 1 3")
            return cluster
        }

        /// The cursor records' sequences, in the order Kafka holds them.
        static func cursorSequences(_ cluster: KafkaMockCluster) async throws -> [Int64] {
            try await cluster.records(topic: cursors).compactMap { record in
                guard record.key == "test-agent.backbone",
                    let value = try? JSONSerialization.jsonObject(with: Data(record.value.utf8)) as? [String: Any],
                    value["sink"] as? String == "backbone"
                else { return nil }
                return (value["sequence"] as? NSNumber)?.int64Value
            }
        }

        @Test func eachBatchIsCommittedWithItsCursorRecord() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 5000, subjects: 7)
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                    (try? agent.sinkCursor("backbone")) ?? 0 >= 5001
                }, "the agent delivers everything")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.count == 5001 && outbox.allSatisfy { seen.bodies[$0.id] == $0.body })
            #expect(seen.copies.count == 5001 && seen.duplicated == 0, "each id once (\(seen.duplicated) twice)")
            #expect(seen.keyIsSubject && seen.outOfOrder.isEmpty)
            let cursors = try await Self.cursorSequences(cluster)
            #expect(cursors.count > 1 && cursors.last == 5001, "a cursor record per batch, the last at the end")
            #expect(zip(cursors, cursors.dropFirst()).allSatisfy { $0 < $1 })
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// What a kill -9 between Kafka's commit and the outbox's settlement leaves: Kafka's cursor
        /// ahead of the outbox's. The agent reads it at start and sends nothing up to it again.
        @Test func aCursorKafkaCommittedAheadOfTheOutboxIsNotSentAgain() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            try await cluster.produce(
                topic: Self.cursors, key: "test-agent.backbone", value: #"{"sink":"backbone","sequence":3000}"#)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 5000, subjects: 7)
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                    (try? agent.sinkCursor("backbone")) ?? 0 >= 5001
                }, "the outbox's cursor catches up and the rest is delivered")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.filter { $0.sequence <= 3000 }.allSatisfy { seen.copies[$0.id] == nil }, "none sent again")
            #expect(outbox.filter { $0.sequence > 3000 }.allSatisfy { seen.copies[$0.id] == 1 }, "the rest once")
            #expect(agent.child?.stderr.contains("Kafka holds the sink's cursor.") == true)
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// A stop while a commit waits for brokers that are gone ends within SPEC 6's 10 s, however
        /// long the sink's timeout; the next run sends again what was not committed.
        @Test func aStopDuringACommitThatWaitsForTheBrokersEndsWithinTenSeconds() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster, timeout: "30s"), directory: dir)
            try agent.start(events: 20_000, rate: 2000, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 1000 })
            for broker in 1...3 { try await cluster.down(broker) }
            let cursor = try agent.sinkCursor("backbone")
            #expect(
                await eventually(timeout: .seconds(20)) {
                    (try? await agent.status().sinks["backbone"]?.pending) ?? 0 > 3000
                }, "the sink waits in a commit while events come in")
            let stopped = ContinuousClock.now
            #expect(await agent.stop() == 0)
            #expect(ContinuousClock.now - stopped < .seconds(10), "a stop ends within 10 s")
            #expect(
                try agent.sinkCursor("backbone") - cursor < 1000, "nothing was committed while the brokers were down")
            for broker in 1...3 { try await cluster.up(broker) }
            try agent.start(events: 20_000, rate: 0, subjects: 5)
            #expect(
                await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
                    (try? agent.sinkCursor("backbone")) ?? 0 >= 20_001
                }, "the next run delivers the rest")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            #expect(try agent.outboxEvents().allSatisfy { seen.copies[$0.id] != nil }, "nothing is missing")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }
    }
}
