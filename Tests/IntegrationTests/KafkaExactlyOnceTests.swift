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
        /// The agent's log line when it settles what Kafka committed without sending it.
        static let catchUp = "Kafka's cursor is ahead of the outbox's"

        static func sink(_ cluster: KafkaMockCluster, timeout: String = "4s") -> String {
            KafkaDeliveryTests.sink(cluster, timeout: timeout, extra: ", exactly_once: true")
        }

        /// The sink through the relay.
        static func sink(_ relay: KafkaTransactionRelay, timeout: String = "4s") -> String {
            let brokers = relay.bootstrap.split(separator: ",").map { "\"\($0)\"" }.joined(separator: ", ")
            return """
                  - name: backbone
                    kafka: { brokers: [\(brokers)], timeout: \(timeout), exactly_once: true }
                    batch: { max_events: 500, linger: 20ms }
                    retry: { initial: 50ms, max: 1s }
                """
        }

        /// Each id of the outbox exactly once and the sequences 1...N, as a `read_committed`
        /// consumer sees them through the relay; each subject in order.
        static func expectExactlyOnce(
            _ cluster: KafkaMockCluster, _ relay: KafkaTransactionRelay, _ agent: AgentHarness, count: Int
        ) async throws {
            let records = try await cluster.records(topic: topic, readCommittedThrough: relay)
            let seen = Seen(records)
            let outbox = try agent.outboxEvents()
            #expect(outbox.count == count && outbox.allSatisfy { seen.copies[$0.id] == 1 }, "each id exactly once")
            #expect(seen.copies.count == count && seen.outOfOrder.isEmpty && seen.twoContents.isEmpty)
            let sequences = records.compactMap { record in
                (try? JSONSerialization.jsonObject(with: Data(record.value.utf8)) as? [String: Any])?["sequence"]
                    .flatMap { Int64("\($0)") }
            }
            let oneToN = sequences.sorted() == Array(1...Int64(count))
            #expect(oneToN, "the sequence 1...N (\(sequences.count) records, \(Set(sequences).count) sequences)")
        }

        static func cluster(_ dir: TemporaryDirectory) async throws -> KafkaMockCluster {
            let cluster = try await KafkaDeliveryTests.cluster(dir)
            try await cluster.command("topic \(cursors) 1 3")
            return cluster
        }

        /// The mock cluster with the cursor topic, and the `read_committed` relay in front of it.
        static func clusterBehindRelay(
            _ dir: TemporaryDirectory
        ) async throws -> (KafkaMockCluster, KafkaTransactionRelay) {
            let cluster = try await Self.cluster(dir)
            return (cluster, try await KafkaTransactionRelay(upstream: cluster.bootstrap))
        }

        /// Stops the agent (expecting a clean exit), then the relay and the cluster.
        static func stop(
            _ agent: AgentHarness, _ relay: KafkaTransactionRelay, _ cluster: KafkaMockCluster,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async {
            #expect(await agent.stop() == 0, sourceLocation: sourceLocation)
            await relay.stop()
            await cluster.stop()
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
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 5001, within: .seconds(60), "the agent delivers everything")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.count == 5001 && outbox.allSatisfy { seen.bodies[$0.id] == String($0.body) })
            #expect(seen.copies.count == 5001 && seen.duplicated == 0, "each id once (\(seen.duplicated) twice)")
            #expect(seen.keyIsSubject && seen.outOfOrder.isEmpty)
            let cursors = try await Self.cursorSequences(cluster)
            #expect(cursors.count > 1 && cursors.last == 5001, "a cursor record per batch, the last at the end")
            #expect(zip(cursors, cursors.dropFirst()).allSatisfy { $0 < $1 })
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// What a kill -9 between Kafka's commit and the outbox's settlement leaves: Kafka's cursor
        /// ahead of the outbox's, for the same outbox. Everything committed, then the outbox's
        /// cursor rolled back: the agent reads Kafka's at start and sends nothing up to it again.
        @Test func aCursorKafkaCommittedAheadOfTheOutboxIsNotSentAgain() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 5000, subjects: 7)
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 5001, within: .seconds(60), "the agent delivers everything")
            #expect(await agent.stop() == 0)
            try SQLiteConnection(path: dir.path + "/data/outbox.db")
                .execute("UPDATE sinks SET cursor = 3000 WHERE name = 'backbone'")
            try agent.start(events: 5000, subjects: 7)
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                    (try? agent.sinkCursor("backbone")) ?? 0 >= 5001
                        && agent.child?.stderr.contains(Self.catchUp) == true
                }, "the outbox's cursor catches up with Kafka's")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.count == 5001 && outbox.allSatisfy { seen.copies[$0.id] == 1 }, "none sent again")
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// A new outbox (SPEC 7: first start, `missing`, `quarantined`) numbers from 1 again and
        /// meets Kafka's cursor record of an earlier outbox of the same agent and sink: that
        /// record counts for nothing, and every event, `outbox.created` included, is sent once.
        @Test(arguments: [
            #"{"sink":"backbone","sequence":2000000}"#,
            #"{"sink":"backbone","sequence":2000000,"agent":"test-agent","outbox":"0123456789abcdef"}"#,
        ])
        func aNewOutboxMeetingAnEarlierOutboxsCursorSendsEverything(record: String) async throws {
            let dir = TemporaryDirectory()
            let cluster = try await Self.cluster(dir)
            try await cluster.produce(topic: Self.cursors, key: "test-agent.backbone", value: record)
            let agent = AgentHarness(sinks: Self.sink(cluster), directory: dir)
            try agent.start(events: 5000, subjects: 7)
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 5001, within: .seconds(60), "the agent delivers everything")
            let seen = Seen(try await cluster.records(topic: Self.topic))
            let outbox = try agent.outboxEvents()
            #expect(outbox.count == 5001 && outbox.allSatisfy { seen.copies[$0.id] == 1 }, "each event sent once")
            #expect(agent.child?.stderr.contains("Kafka holds a cursor of another outbox") == true)
            #expect(await agent.stop() == 0)
            await cluster.stop()
        }

        /// Every broker lost mid-drain, and a stop while a commit waits for them: the stop ends
        /// within SPEC 6's 10 s however long the sink's timeout, and the next run sends what was
        /// not committed, each event once for a `read_committed` consumer.
        @Test func aStopDuringACommitThatWaitsForLostBrokersEndsWithinTenSecondsAndLosesNothing() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay, timeout: "30s"), directory: dir)
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
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 20_001, within: .seconds(90), every: .milliseconds(500),
                "the next run delivers the rest")
            try await Self.expectExactlyOnce(cluster, relay, agent, count: 20_001)
            await Self.stop(agent, relay, cluster)
        }

        /// kill -9 twenty times mid-drain, the agent and its consumer behind the read_committed
        /// relay (what a broker gives a `read_committed` consumer, which the mock alone does not):
        /// each id exactly once, the sequences 1...N, each subject in order.
        @Test func killedTwentyTimesMidDrainAReadCommittedConsumerSeesEachEventExactlyOnce() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay), directory: dir)
            var kills = 0
            var cursor: Int64 = 0
            // Runs that found Kafka's cursor ahead of the outbox's (a kill between Kafka's commit
            // and the outbox's settlement, a window of a few milliseconds a batch).
            var catchUps = 0
            while kills < 20 {
                try agent.start(events: 20_000, rate: 1000, subjects: 5)
                let before = cursor
                _ = await eventually(timeout: .seconds(10)) { (try? agent.sinkCursor("backbone")) ?? 0 > before }
                cursor = try agent.sinkCursor("backbone")
                guard cursor < 20_001 else { break }
                await agent.kill9()
                if agent.child?.stderr.contains(Self.catchUp) == true { catchUps += 1 }
                kills += 1
            }
            #expect(kills >= 5, "the drain outlasted only \(kills) kills")
            if kills == 20 { try agent.start(events: 20_000, rate: 4000, subjects: 5) }
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 20_001, within: .seconds(120), every: .milliseconds(500),
                "the last run delivers the rest")
            try await Self.expectExactlyOnce(cluster, relay, agent, count: 20_001)
            let all = try await cluster.records(topic: Self.topic).count
            if agent.child?.stderr.contains(Self.catchUp) == true { catchUps += 1 }
            print(
                "kafka exactly-once kill test: \(kills) kills, \(catchUps) catch-ups, \(all) records in the mock's log for 20001 events"
            )
            await Self.stop(agent, relay, cluster)
        }

        /// A produce error that makes the transaction abortable (INVALID_RECORD, 87), and a fenced
        /// producer (EndTxn answered INVALID_PRODUCER_EPOCH, 47): the first aborts and sends the
        /// batch again in a new transaction, the second starts a new producer and reads the cursor
        /// again. Either way a `read_committed` consumer sees each event once.
        @Test(arguments: [(0, 87, "Kafka reports an error."), (26, 47, "Kafka producer failed; starting a new one.")])
        func anAbortedOrFencedTransactionIsSentAgainOnce(api: Int, code: Int, log: String) async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay), directory: dir)
            try agent.start(events: 10_000, rate: 4000, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 500 })
            try await cluster.command("errors \(api) 1 \(code)")
            #expect(await eventually(timeout: .seconds(20)) { agent.child?.stderr.contains(log) == true })
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 10_001, within: .seconds(90), every: .milliseconds(500), "the agent delivers everything"
            )
            try await Self.expectExactlyOnce(cluster, relay, agent, count: 10_001)
            // A fenced producer's transaction was produced whole before EndTxn failed: its records
            // stay in the mock's log as aborted ones, which the relay hides. A produce error may
            // reject every record of its transaction (all in the one request it failed), and leave none.
            let all = try await cluster.records(topic: Self.topic).count
            if api == 26 { #expect(all > 10_001, "the mock's log holds the aborted records the relay hides (\(all))") }
            await Self.stop(agent, relay, cluster)
        }

        /// One event larger than librdkafka's `message.max.bytes`: its transaction is aborted, the
        /// forwarder halves the batch until the event is alone, and it is dead-lettered as in the
        /// default mode; everything else is committed once and the sink goes on.
        @Test func anEventTooLargeForKafkaIsDeadLetteredAndTheRestCommittedOnce() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            // Batches may hold the event with others.
            let sink = Self.sink(relay).replacingOccurrences(of: "linger: 20ms", with: "max_bytes: 8MiB, linger: 20ms")
            let agent = AgentHarness(sinks: sink, directory: dir)
            try agent.start(events: 1000, subjects: 5)
            await KafkaDeliveryTests.expectDelivered(agent, through: 1001, within: .seconds(60))
            #expect(await agent.stop() == 0)
            // Appended by hand, the agent stopped: sequence 1002, as the agent would have numbered it.
            let db = try SQLiteConnection(path: dir.path + "/data/outbox.db")
            let padding = String(repeating: "x", count: 1_200_000)
            try db.execute(
                """
                INSERT INTO events(seq, id, type, class, time_ms, recorded_ms, body)
                SELECT 1002, 'too-large', type, class, time_ms, recorded_ms,
                '{"specversion":"1.0","id":"too-large","type":"tag.changed","subject":"test.source","data":"\(padding)"}'
                FROM events WHERE seq = 1001;
                UPDATE meta SET value = '1002' WHERE key = 'last_seq';
                """)
            try agent.start(events: 2000, subjects: 5)
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 2002, within: .seconds(60), "the sink goes on past the event")
            let dead = try SQLiteConnection(path: dir.path + "/data/outbox.db", readOnly: true)
                .prepare("SELECT seq, status FROM dead WHERE sink = 'backbone'")
            #expect(try dead.step() && dead.int(0) == 1002 && dead.int(1) == 413, "the event is dead-lettered")
            #expect(try !dead.step(), "only that event")
            let seen = Seen(try await cluster.records(topic: Self.topic, readCommittedThrough: relay))
            let outbox = try agent.outboxEvents().filter { $0.sequence != 1002 }
            #expect(outbox.count == 2001 && outbox.allSatisfy { seen.copies[$0.id] == 1 }, "the rest once")
            #expect(seen.copies["too-large"] == nil)
            await Self.stop(agent, relay, cluster)
        }

        /// `outbox replay` (and `outbox dead retry`) queue events at or behind Kafka's cursor again:
        /// they are sent again, each once more, and the cursor records never move backwards.
        @Test func replayedEventsAreSentAgainAndTheCursorNeverMovesBack() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay), directory: dir)
            try agent.start(events: 1000, subjects: 5)
            await KafkaDeliveryTests.expectDelivered(agent, through: 1001, within: .seconds(60))
            let replay = try await agent.command(["outbox", "replay", "--sink", "backbone", "--since", "1h"])
            #expect(replay.status == 0 && replay.stdout.contains("re-queued 1001 events"), "\(replay.stdout)")
            let outbox = try agent.outboxEvents()
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(500)) {
                    let seen = Seen((try? await cluster.records(topic: Self.topic, readCommittedThrough: relay)) ?? [])
                    return outbox.allSatisfy { seen.copies[$0.id] == 2 }
                }, "the running agent sends the replay")
            let cursors = try await Self.cursorSequences(cluster)
            #expect(cursors.allSatisfy { $0 <= 1001 } && cursors.last == 1001, "the cursor stays at 1001")
            #expect(zip(cursors, cursors.dropFirst()).allSatisfy { $0 <= $1 }, "never backwards: \(cursors)")
            await Self.stop(agent, relay, cluster)
        }

        /// Another producer's transaction (another agent's or sink's) left open on the cursor topic
        /// before the sink's last cursor records: a `read_committed` read ends at it, where the
        /// sink's newest record is an older one. The agent does not take that one for Kafka's
        /// cursor: it waits for the transaction to end and sends nothing Kafka committed again.
        @Test func aCursorReadBehindAnotherProducersOpenTransactionWaitsAndSendsNothingTwice() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay), directory: dir)
            try agent.start(events: 3000, rate: 300, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 300 })
            let other = try await KafkaTransactionalProducer(
                bootstrap: relay.bootstrap, topic: Self.cursors, transactionalID: "other-agent.k", directory: dir)
            try await other.begin()
            try await other.produce(key: "other-agent.k", value: #"{"sink":"k","sequence":1}"#)
            try await other.flush()
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 3001, within: .seconds(60), "the agent commits the rest behind the open transaction")
            #expect(await agent.stop() == 0)
            // What a kill -9 before the last settlements leaves: Kafka's cursor ahead of the outbox's.
            try SQLiteConnection(path: dir.path + "/data/outbox.db")
                .execute("UPDATE sinks SET cursor = 2000 WHERE name = 'backbone'")
            try agent.start(events: 3000, subjects: 5)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    agent.child?.stderr.contains("waits for an open transaction") == true
                }, "the cursor read waits for the open transaction")
            #expect(try agent.sinkCursor("backbone") == 2000, "nothing settled meanwhile")
            try await other.commit()
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 3001, within: .seconds(60), "the outbox's cursor catches up once the transaction ends")
            try await Self.expectExactlyOnce(cluster, relay, agent, count: 3001)
            #expect(await agent.stop() == 0)
            await other.crash()
            await relay.stop()
            await cluster.stop()
        }

        /// A stop mid-drain leaves no transaction open: what another producer writes after it is
        /// visible to a `read_committed` consumer at once, not held back until the transaction
        /// times out or the agent starts again.
        @Test func aStopMidDrainLeavesNoTransactionOpen() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay), directory: dir)
            var cursor: Int64 = 0
            for stop in 1...5 {
                try agent.start(events: 100_000, rate: 2000, subjects: 5)
                let before = cursor
                #expect(
                    await eventually(timeout: .seconds(30)) {
                        (try? agent.sinkCursor("backbone")) ?? 0 > before + 500
                    })
                #expect(await agent.stop() == 0)
                cursor = try agent.sinkCursor("backbone")
                let markers = (0..<12).map { "after-stop-\(stop)-\($0)" }
                for marker in markers {
                    try await cluster.produce(topic: Self.topic, key: marker, value: #"{"id":"\#(marker)"}"#)
                }
                let seen = Seen(try await cluster.records(topic: Self.topic, readCommittedThrough: relay))
                let held = markers.filter { seen.copies[$0] == nil }
                #expect(held.isEmpty, "stop \(stop): \(held.count) of 12 records held back by an open transaction")
            }
            await relay.stop()
            await cluster.stop()
        }

        /// 100,000 events appended while no broker answers, then the brokers back: through the
        /// relay, each event once, the sequences 1...N, each subject in order.
        @Test func aBacklogBuiltWhileTheClusterIsDownIsCommittedOnce() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            for broker in 1...3 { try await cluster.down(broker) }
            let agent = AgentHarness(sinks: Self.sink(relay), directory: dir)
            try agent.start(events: 100_000, subjects: 5)
            #expect(
                await eventually(timeout: .seconds(60)) {
                    (try? await agent.status().sinks["backbone"]?.pending) == 100_001
                }, "the backlog builds while the cluster is down")
            #expect(try agent.sinkCursor("backbone") == 0, "nothing counts as delivered while no broker answers")
            for broker in 1...3 { try await cluster.up(broker) }
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 100_001, within: .seconds(180), every: .milliseconds(500),
                "the backlog drains once the brokers are back")
            try await Self.expectExactlyOnce(cluster, relay, agent, count: 100_001)
            await Self.stop(agent, relay, cluster)
        }

        /// NOT_ENOUGH_REPLICAS (19) and REQUEST_TIMED_OUT (7) on Produce, retried inside the
        /// transactional producer: each event once.
        @Test(arguments: [19, 7])
        func aRetriableProduceErrorIsCommittedOnce(code: Int) async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay), directory: dir)
            try agent.start(events: 10_000, rate: 4000, subjects: 5)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 500 })
            try await cluster.failProduce(count: 20, code: code)
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 10_001, within: .seconds(90), every: .milliseconds(500), "the agent delivers everything"
            )
            try await Self.expectExactlyOnce(cluster, relay, agent, count: 10_001)
            await Self.stop(agent, relay, cluster)
        }

        /// One broker (a partition's leader) down for longer than the sink's timeout mid-drain,
        /// then back with the leadership moved: the transactions that time out are aborted and
        /// sent again, each event once.
        @Test func aBrokerDownMidDrainAndALeaderChangeCommitEachEventOnce() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            let agent = AgentHarness(sinks: Self.sink(relay, timeout: "2s"), directory: dir)
            try agent.start(events: 30_000, rate: 3000, subjects: 9)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 1000 })
            try await cluster.down(2)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    agent.child?.stderr.contains("Kafka reports an error.") == true
                },
                "a transaction fails while its partition's leader is gone")
            try await cluster.up(2)
            try await cluster.leader(topic: Self.topic, partition: 1, broker: 3)
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 30_001, within: .seconds(120), every: .milliseconds(500),
                "the backlog drains once the broker is back")
            try await Self.expectExactlyOnce(cluster, relay, agent, count: 30_001)
            await Self.stop(agent, relay, cluster)
        }

        /// A record the broker finds too large (MESSAGE_TOO_LARGE, 10) fails its transaction, which
        /// is aborted; the event is then isolated and dead-lettered as in the default mode, and the
        /// others go on, each once.
        @Test func aRecordTooLargeForTheBrokerIsDeadLetteredAndTheRestCommittedOnce() async throws {
            let dir = TemporaryDirectory()
            let (cluster, relay) = try await Self.clusterBehindRelay(dir)
            // The events on broker 1, the cursor records on broker 2: the error hits an event's record.
            for partition in 0..<3 { try await cluster.leader(topic: Self.topic, partition: partition, broker: 1) }
            try await cluster.leader(topic: Self.cursors, partition: 0, broker: 2)
            let sink = Self.sink(relay).replacingOccurrences(of: "max_events: 500", with: "max_events: 1")
            let agent = AgentHarness(sinks: sink, directory: dir)
            try agent.start(events: 300, rate: 100, subjects: 3)
            #expect(await eventually(timeout: .seconds(30)) { (try? agent.sinkCursor("backbone")) ?? 0 > 20 })
            try await cluster.failProduce(count: 1, code: 10, broker: 1)
            await KafkaDeliveryTests.expectDelivered(
                agent, through: 301, within: .seconds(60), every: .milliseconds(500), "the agent delivers the rest")
            #expect(try await agent.status().sinks["backbone"]?.dead == 1, "the one event is dead-lettered")
            let records = try await cluster.records(topic: Self.topic, readCommittedThrough: relay)
            let seen = Seen(records)
            #expect(seen.copies.count == 300 && seen.duplicated == 0, "the others once")
            await Self.stop(agent, relay, cluster)
        }
    }
}
