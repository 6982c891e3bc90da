import EdgeAgentTesting
import Testing

extension Integration {
    /// The read_committed relay on its own, against hand-made transactions on the mock cluster:
    /// what it shows is what a broker shows a `read_committed` consumer.
    @Suite struct KafkaTransactionRelayTests {
        @Test func aCommittedTransactionIsVisibleAnAbortedOneIsNotAndAnOpenOneHoldsBackWhatFollows() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await KafkaMockCluster(directory: dir, topics: [("t", 1)])
            let relay = try await KafkaTransactionRelay(upstream: cluster.bootstrap)
            let producer = try await KafkaTransactionalProducer(
                bootstrap: relay.bootstrap, topic: "t", transactionalID: "hand", directory: dir)
            for (value, end) in [("committed-1", "commit"), ("aborted-1", "abort"), ("open-1", "")] {
                try await producer.begin()
                try await producer.produce(key: "k", value: value)
                try await producer.flush()
                if end == "commit" { try await producer.commit() }
                if end == "abort" { try await producer.abort() }
            }
            try await cluster.produce(topic: "t", key: "k", value: "after-open")
            #expect(
                try await cluster.records(topic: "t").map(\.value) == [
                    "committed-1", "aborted-1", "open-1", "after-open",
                ],
                "the mock alone shows every record")
            #expect(try await cluster.records(topic: "t", readCommittedThrough: relay).map(\.value) == ["committed-1"])
            try await producer.commit()
            #expect(
                try await cluster.records(topic: "t", readCommittedThrough: relay).map(\.value) == [
                    "committed-1", "open-1", "after-open",
                ], "once committed, the open transaction and what followed it are visible")
            await producer.crash()
            await relay.stop()
            await cluster.stop()
        }

        /// A producer that dies mid-transaction: the next one of the same `transactional.id`
        /// aborts its transaction on `init_transactions`, as a broker does when it fences it.
        @Test func aNewProducerOfTheSameIdAbortsTheTransactionItsPredecessorLeftOpen() async throws {
            let dir = TemporaryDirectory()
            let cluster = try await KafkaMockCluster(directory: dir, topics: [("t", 1)])
            let relay = try await KafkaTransactionRelay(upstream: cluster.bootstrap)
            let first = try await KafkaTransactionalProducer(
                bootstrap: relay.bootstrap, topic: "t", transactionalID: "hand", directory: dir)
            try await first.begin()
            try await first.produce(key: "k", value: "left-open")
            try await first.flush()
            await first.crash()
            #expect(try await cluster.records(topic: "t", readCommittedThrough: relay).isEmpty)
            let second = try await KafkaTransactionalProducer(
                bootstrap: relay.bootstrap, topic: "t", transactionalID: "hand", directory: dir)
            try await second.begin()
            try await second.produce(key: "k", value: "committed")
            try await second.commit()
            #expect(try await cluster.records(topic: "t").map(\.value) == ["left-open", "committed"])
            #expect(try await cluster.records(topic: "t", readCommittedThrough: relay).map(\.value) == ["committed"])
            await second.crash()
            await relay.stop()
            await cluster.stop()
        }
    }
}
