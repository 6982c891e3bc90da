import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The Kafka sink against librdkafka's 3-broker mock cluster, read back with `kcat`.
    @Suite struct KafkaDeliveryTests {
        static let topic = "edge.plant-t.events"

        static func sink(_ cluster: KafkaMockCluster, timeout: String = "4s", extra: String = "") -> String {
            let brokers = cluster.bootstrap.split(separator: ",").map { "\"\($0)\"" }.joined(separator: ", ")
            return """
                  - name: backbone
                    kafka: { brokers: [\(brokers)], timeout: \(timeout)\(extra) }
                    batch: { max_events: 500, linger: 20ms }
                    retry: { initial: 50ms, max: 1s }
                """
        }

        /// Partition p led by broker p + 1.
        static func cluster(_ dir: TemporaryDirectory) async throws -> KafkaMockCluster {
            let cluster = try await KafkaMockCluster(directory: dir, topics: [(topic, 3)])
            for partition in 0..<3 {
                try await cluster.leader(topic: topic, partition: partition, broker: partition + 1)
            }
            return cluster
        }

        /// What the consumer saw, checked as the middleware would: by id.
        struct Seen {
            var copies: [String: Int] = [:]
            var bodies: [String: String] = [:]
            /// Ids that came with two different contents.
            var twoContents: [String] = []
            /// Subjects whose values (the test source's n) went backwards within their partition.
            var outOfOrder: Set<String> = []
            var keyIsSubject = true
            var partitions: Set<Int> = []

            init(_ records: [KafkaMockCluster.Record]) {
                var last: [String: Int] = [:]
                for record in records {
                    guard
                        let event = try? JSONSerialization.jsonObject(with: Data(record.value.utf8)) as? [String: Any],
                        let id = event["id"] as? String
                    else { continue }
                    if let body = bodies[id], body != record.value { twoContents.append(id) }
                    bodies[id] = record.value
                    copies[id, default: 0] += 1
                    partitions.insert(record.partition)
                    let subject = event["subject"] as? String ?? ""
                    if record.key != subject { keyIsSubject = false }
                    // A copy sent again after a gap may repeat older values; a first copy never goes back.
                    if let n = (event["data"] as? [String: Any])?["value"] as? Int, copies[id] == 1 {
                        if let previous = last[subject], n < previous { outOfOrder.insert(subject) }
                        last[subject] = n
                    }
                }
            }

            var duplicated: Int { copies.values.filter { $0 > 1 }.count }
        }

        /// Waits until the sink's cursor in the outbox reaches `sequence`, and expects it did.
        static func expectDelivered(
            _ agent: AgentHarness, through sequence: Int64, within timeout: Duration,
            every interval: Duration = .milliseconds(250), _ comment: Comment? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async {
            #expect(
                await eventually(timeout: timeout, every: interval) {
                    (try? agent.sinkCursor("backbone")) ?? 0 >= sequence
                }, comment, sourceLocation: sourceLocation)
        }

        @Test func deliversEveryEventOnceKeyedBySubjectAsTheHTTPSinkSendsIt() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 5000, subjects: 7)
            await Self.expectDelivered(agent, through: 5001, within: .seconds(60), "the agent delivers everything")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.count == 5001)
            #expect(outbox.allSatisfy { seen.bodies[$0.id] == String($0.body) }, "each value is the stored CloudEvent")
            #expect(seen.copies.count == 5001 && seen.duplicated == 0, "each id once (\(seen.duplicated) twice)")
            #expect(seen.keyIsSubject && seen.outOfOrder.isEmpty && seen.partitions.count == 3)
            let records = try await cluster.records(topic: Self.topic)
            #expect(records.allSatisfy { $0.headers == "content-type=application/cloudevents+json" })
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// A topic template naming the type and the subject: each event lands in its own subject's
        /// topic, whole and once, though the sink keeps a record's topic for the next one when
        /// their type and subject are the same.
        @Test func aTopicTemplateSendsEachEventToItsSubjectsTopic() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(
                sinks: Self.sink(cluster, extra: #", topic: "edge.{type}.{subject}""#), directory: dir)
            try agent.start(events: 3000, subjects: 3)
            await Self.expectDelivered(agent, through: 3001, within: .seconds(60), "the agent delivers everything")
            let outbox = try agent.outboxEvents()
            var delivered = 0
            for n in 0..<3 {
                let subject = "test.source.\(n)"
                let seen = Seen(try await cluster.records(topic: "edge.tag.changed.\(subject)"))
                let expected = outbox.filter { EnvelopeSubject.of($0.body) == subject }
                #expect(expected.count == 1000 && seen.copies.count == 1000, "\(subject): \(seen.copies.count)")
                #expect(expected.allSatisfy { seen.bodies[$0.id] == String($0.body) && seen.copies[$0.id] == 1 })
                #expect(seen.keyIsSubject && seen.outOfOrder.isEmpty)
                delivered += seen.copies.count
            }
            #expect(delivered == 3000)
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        @Test func binaryModeSendsTheAttributesAsHeadersAndTheDataAsTheValue() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster, extra: ", mode: binary"), directory: dir)
            try agent.start(events: 10)
            await Self.expectDelivered(agent, through: 11, within: .seconds(30))
            let records = try await cluster.records(topic: Self.topic)
            let event = try #require(try agent.outboxEvents().last)
            let record = try #require(records.first { $0.headers.contains("ce_id=\(event.id)") })
            #expect(record.value == #"{"tag":"test.source","value":10,"quality":"good"}"#)
            #expect(record.key == "test.source")
            for header in [
                "content-type=application/json", "ce_specversion=1.0", "ce_type=tag.changed",
                "ce_subject=test.source", "ce_source=/sites/plant-t/lines/line-1/agents/test-agent",
                "ce_sequence=00000000000000000011",
            ] {
                #expect(record.headers.contains(header), "\(header) in \(record.headers)")
            }
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// A backlog built while no broker answers is delivered whole once they come back: the
        /// records librdkafka expired (after the sink's timeout) are produced again from the outbox.
        /// 100,000 events appended while no broker answers: nothing counts as delivered, and once
        /// the brokers are back every event arrives, once, each subject in order.
        @Test func aBacklogBuiltWhileTheClusterIsDownIsDeliveredWhole() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            for broker in 1...3 { try await cluster.down(broker) }
            let agent = AgentHarness(sinks: Self.sink(cluster, timeout: "2s"), directory: dir)
            try agent.start(events: 100_000, subjects: 5)
            #expect(
                await eventually(timeout: .seconds(60)) {
                    (try? await agent.status().sinks["backbone"]?.pending) == 100_001
                }, "the backlog builds while the cluster is down")
            #expect(
                await eventually(timeout: .seconds(30)) { agent.child?.stderr.contains("reason=timeout") == true },
                "librdkafka expired the first batch")
            #expect(try agent.sinkCursor("backbone") == 0, "nothing counts as delivered while no broker answers")
            for broker in 1...3 { try await cluster.up(broker) }
            await Self.expectDelivered(
                agent, through: 100_001, within: .seconds(120), every: .milliseconds(500),
                "the backlog drains once the brokers are back")
            // The default mode promises at least once: nothing missing, a duplicate the same whole event.
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let ids = Set(try agent.outboxEvents().map(\.id))
            #expect(ids.count == 100_001 && ids.allSatisfy { seen.copies[$0] != nil }, "nothing missing")
            #expect(seen.twoContents.isEmpty && seen.outOfOrder.isEmpty, "duplicates whole (\(seen.duplicated))")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// One broker (the leader of some partitions) down for longer than the sink's timeout
        /// mid-drain: the records it leads time out and are produced again; the cursor never passes a
        /// record Kafka does not have.
        @Test func aBrokerDownMidDrainLosesNothingAndTheCursorNeverRunsAhead() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster, timeout: "2s"), directory: dir)
            try agent.start(events: 30_000, rate: 3000, subjects: 9)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 1000 })
            try await cluster.down(2)
            #expect(
                await eventually(timeout: .seconds(20)) { agent.child?.stderr.contains("reason=timeout") == true },
                "records for the partition the broker leads time out")
            // What the cursor passed while a leader was gone is never produced again: Kafka must have it.
            let cursor = try agent.sinkCursor("backbone")
            try await cluster.up(2)
            try await cluster.leader(topic: Self.topic, partition: 0, broker: 3)
            await Self.expectDelivered(
                agent, through: 30_001, within: .seconds(120), every: .milliseconds(500),
                "the backlog drains once the broker is back")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(
                outbox.filter { $0.sequence <= cursor }.allSatisfy { seen.copies[$0.id] != nil },
                "the cursor (\(cursor)) ran ahead of the delivery reports")
            #expect(outbox.count == 30_001 && outbox.allSatisfy { seen.copies[$0.id] != nil }, "nothing is missing")
            #expect(seen.twoContents.isEmpty, "a duplicate is the whole event again")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// NOT_ENOUGH_REPLICAS (19) and REQUEST_TIMED_OUT (7) on Produce are retried by the
        /// idempotent producer itself: every event arrives, and once.
        @Test(arguments: [19, 7])
        func aRetriableProduceErrorLosesNothingAndCopiesNothing(code: Int) async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 10_000, rate: 4000, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 500 })
            try await cluster.failProduce(count: 20, code: code)
            await Self.expectDelivered(
                agent, through: 10_001, within: .seconds(90), every: .milliseconds(500), "the agent delivers everything"
            )
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let ids = try agent.outboxEvents().map(\.id)
            #expect(ids.allSatisfy { seen.copies[$0] != nil }, "nothing is missing")
            #expect(seen.duplicated == 0 && seen.outOfOrder.isEmpty, "\(seen.duplicated) ids came twice")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// SIGTERM mid-drain ends the agent cleanly within 10 s (librdkafka's queue purged); the
        /// next run goes on from the cursor, and together they deliver everything.
        @Test func aStopMidDrainExitsCleanlyAndTheNextRunLosesNothing() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            try await cluster.command("rtt 1 200")  // slow acknowledgements: the stop finds records in flight
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 20_000, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 2000 })
            let stopped = ContinuousClock.now
            #expect(await agent.stop() == 0)
            #expect(ContinuousClock.now - stopped < .seconds(10), "a stop ends within 10 s")
            let cursor = try agent.sinkCursor("backbone")
            #expect(cursor < 20_001, "the stop came mid-drain")
            try agent.start(events: 20_000, subjects: 5)
            await Self.expectDelivered(
                agent, through: 20_001, within: .seconds(90), every: .milliseconds(500),
                "the next run delivers the rest")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let ids = try agent.outboxEvents().map(\.id)
            #expect(ids.count == 20_001 && ids.allSatisfy { seen.copies[$0] != nil }, "nothing is missing")
            #expect(seen.twoContents.isEmpty, "a duplicate is the whole event again")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// A stop while part of the batch in hand is acknowledged settles that part: the cursor moves
        /// past the run of successful reports from the batch's start, and the next run does not send
        /// it again. The partition of a later event's subject is down (its leader stopped), so the
        /// run ends right before that event whatever the timing.
        @Test func aStopSettlesTheAcknowledgedLeadOfTheBatchAndTheNextRunDoesNotResendIt() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster, timeout: "60s"), directory: dir)
            // First run, all brokers up: sequences 1...6, every subject once; where each one goes.
            try agent.start(events: 5, subjects: 5)
            await Self.expectDelivered(agent, through: 6, within: .seconds(30))
            #expect(await agent.stop() == 0)
            let partitions = Dictionary(
                try await cluster.records(topic: Self.topic).map { ($0.key, $0.partition) },
                uniquingKeysWith: { a, _ in a }
            )
            // Second run from sequence 7 (`test.source.{n % 5}`, n = sequence - 1), with the
            // partition of a subject after the first one down: the run ends before its first event.
            func partition(_ sequence: Int64) -> Int? { partitions["test.source.\((sequence - 1) % 5)"] }
            let later: ClosedRange<Int64> = 8...11
            let down = try #require(later.lazy.compactMap(partition).first { $0 != partition(7) })
            let gap = try #require(later.first { partition($0) == down })
            try await cluster.down(down + 1)
            try agent.start(events: 1000, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { ((try? agent.outboxEvents().count) ?? 0) > 12 })
            let lead = Set(try agent.outboxEvents().filter { (7..<gap).contains($0.sequence) }.map(\.id))
            #expect(lead.count == Int(gap - 7))
            // kcat cannot read to the end of a partition without a leader: the others only.
            #expect(
                await eventually(timeout: .seconds(30)) {
                    var records: [KafkaMockCluster.Record] = []
                    for partition in 0..<3 where partition != down {
                        records += (try? await cluster.records(topic: Self.topic, partition: partition)) ?? []
                    }
                    return lead.allSatisfy { Seen(records).copies[$0] != nil }
                }, "the events before the gap are acknowledged")
            #expect(try agent.sinkCursor("backbone") == 6, "the batch in hand is not delivered")
            #expect(await agent.stop() == 0)
            #expect(try agent.sinkCursor("backbone") == gap - 1, "the acknowledged lead is settled at the stop")
            try await cluster.up(down + 1)
            try agent.start(events: 1000, subjects: 5)
            await Self.expectDelivered(agent, through: 1001, within: .seconds(60), "the next run delivers the rest")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            #expect(lead.allSatisfy { seen.copies[$0] == 1 }, "the acknowledged lead is not sent again")
            #expect(try agent.outboxEvents().allSatisfy { seen.copies[$0.id] != nil }, "nothing is missing")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// kill -9 twenty times mid-drain: at least once, with whole events. What Kafka
        /// acknowledged after the last settlement comes again, under the same id and content.
        @Test func killedTwentyTimesMidDrainNothingIsMissing() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            var kills = 0
            var cursor: Int64 = 0
            // Generated at 1,000 events/s: twenty seconds of running, so the kills land mid-drain
            // however fast this machine drains.
            while kills < 20 {
                try agent.start(events: 20_000, rate: 1000, subjects: 5)
                let before = cursor
                _ = await eventually(timeout: .seconds(10)) { (try? agent.sinkCursor("backbone")) ?? 0 > before }
                cursor = try agent.sinkCursor("backbone")
                guard cursor < 20_001 else { break }
                await agent.kill9()
                kills += 1
            }
            #expect(kills >= 5, "the drain outlasted only \(kills) kills")
            if kills == 20 { try agent.start(events: 20_000, rate: 4000, subjects: 5) }
            await Self.expectDelivered(
                agent, through: 20_001, within: .seconds(120), every: .milliseconds(500),
                "the last run delivers the rest")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.count == 20_001 && outbox.allSatisfy { seen.copies[$0.id] != nil }, "nothing is missing")
            #expect(seen.twoContents.isEmpty, "a duplicate is the whole event again")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// OUT_OF_ORDER_SEQUENCE_NUMBER is fatal to an idempotent producer: the sink destroys it,
        /// starts a new one and sends again what was not reported delivered.
        @Test func aFatalProducerErrorStartsANewProducerAndLosesNothing() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 10_000, rate: 4000, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 500 })
            try await cluster.failProduce(count: 1, code: 45)
            #expect(
                await eventually(timeout: .seconds(20)) {
                    agent.child?.stderr.contains("Kafka producer failed; starting a new one.") == true
                }, "the producer failed fatally and the sink says so")
            await Self.expectDelivered(
                agent, through: 10_001, within: .seconds(90), every: .milliseconds(500),
                "the new producer delivers everything")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.allSatisfy { seen.copies[$0.id] != nil }, "nothing is missing")
            #expect(seen.twoContents.isEmpty, "a duplicate is the whole event again")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// SASL against brokers that do not speak it (the mock has no SASL): the sink says why it
        /// fails, and the password appears nowhere in the agent's output.
        @Test func theSASLPasswordNeverReachesTheLog() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let secret = dir.write("kafka-password", "s3cr3t-Pa55word\n")
            let sasl = ", sasl: { mechanism: PLAIN, username: edge, password_file: \(secret) }"
            let agent = AgentHarness(sinks: Self.sink(cluster, timeout: "2s", extra: sasl), directory: dir)
            try agent.start(events: 100, subjects: 1)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    agent.child?.stderr.contains("Kafka reports an error.") == true
                },
                "librdkafka's error is logged")
            #expect(await agent.stop() == 0)
            #expect(agent.child?.stderr.contains("s3cr3t") == false)
            #expect(agent.child?.stdout.contains("s3cr3t") == false)
            await cluster.stop()
        }
    }
}
