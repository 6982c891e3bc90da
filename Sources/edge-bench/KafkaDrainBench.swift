import EdgeAgent
import EdgeAgentCore
import Foundation
import Logging

/// `kafka.drain`: events/s from a 200,000-event backlog to librdkafka's mock cluster (3 brokers,
/// a 3-partition topic) through the forwarder and the Kafka sink (idempotent, `acks=all`, lz4,
/// 10,000-event batches). Baseline: a bare librdkafka producer with the same settings sending the
/// same records (`kafka-mock produce`, C), in the same run against the same cluster. Beside it,
/// `exactly_once_events_s`: the same backlog through a transactional sink (`exactly_once: true`,
/// each batch and its cursor record in one transaction) to another topic of the same cluster;
/// and `outbox_floor_events_s`: the same backlog through the forwarder to a sink that takes each
/// batch at once (the outbox's claims and settlements alone), the most any sink can reach.
enum KafkaDrainBench {
    static let events = Int(ProcessInfo.processInfo.environment["EDGE_BENCH_KAFKA_EVENTS"] ?? "") ?? 200_000
    static let topic = "bench"

    static func run() async throws -> BenchResult {
        let dir = scratchDirectory("kafka")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Built beside this bench (`make bench`).
        let mock =
            URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
            + "/kafka-mock"
        let (cluster, commands, bootstrap) = try startCluster(mock, dir: dir)
        defer {
            try? commands.close()
            cluster.waitUntilExit()
        }

        let options = OutboxOptions(
            directory: dir + "/agent", agentID: "bench", source: "/sites/s/lines/l/agents/bench",
            sync: .full, maxSize: 1 << 34,
            sinks: [
                .init(name: "backbone", filter: .all), .init(name: "eo", filter: .all),
                .init(name: "floor", filter: .all),
            ])
        let writer = try await OutboxWriter(options: options)
        for start in stride(from: 0, to: events, by: 1000) {
            try await writer.append((start..<start + 1000).map(sampleEvent))
        }
        let stored = try OutboxDatabase.openExisting(options).claim(
            sink: "backbone", filter: .all, maxEvents: events + 1, maxBytes: .max
        ).events

        var kafka = SinkConfig.Kafka(brokers: bootstrap.split(separator: ",").map(String.init))
        kafka.topic = topic
        let idempotent = try await drain(kafka, sink: "backbone", count: stored.count, writer: writer, dir: dir)
        kafka.topic = topic + "-eo"
        kafka.exactlyOnce = true
        let transactional = try await drain(kafka, sink: "eo", count: stored.count, writer: writer, dir: dir)
        let floor = try await drain(Instant(), sink: "floor", count: stored.count, writer: writer)
        await writer.close()

        let records = stored.map { EnvelopeSubject.of($0.body) + "\t" + String($0.body) }.joined(separator: "\n") + "\n"
        try records.write(toFile: dir + "/records", atomically: true, encoding: .utf8)
        let raw = try bareProducer(mock, bootstrap: bootstrap, file: dir + "/records")
        return BenchResult(
            bench: "kafka.drain", value: Double(stored.count) / idempotent, unit: "events/s",
            baseline: "a bare librdkafka producer (idempotent, acks=all, lz4) sending the same records",
            baselineValue: Double(stored.count) / raw,
            extra: [
                ("exactly_once_events_s", .double((Double(stored.count) / transactional).rounded())),
                ("outbox_floor_events_s", .double((Double(stored.count) / floor).rounded())),
            ])
    }

    /// Seconds for the forwarder and a Kafka sink to deliver the backlog (10,000-event batches).
    static func drain(_ kafka: SinkConfig.Kafka, sink name: String, count: Int, writer: OutboxWriter, dir: String)
        async throws -> Double
    {
        let agent = AgentConfig.Agent(id: "bench", site: "s", line: "l", dataDir: dir, httpListen: nil)
        let sink = try KafkaSink(kafka, name: name, agent: agent, logger: Logger(label: "bench"))
        return try await drain(sink, sink: name, count: count, writer: writer, kind: .kafka(kafka))
    }

    /// Seconds for the forwarder and `sink` to deliver the backlog (10,000-event batches).
    static func drain(
        _ sink: any EventSink, sink name: String, count: Int, writer: OutboxWriter,
        kind: SinkConfig.Kind = .kafka(.init(brokers: []))
    ) async throws -> Double {
        var config = SinkConfig(name: name, kind: kind)
        config.batch = .init(maxEvents: 10_000, maxBytes: 64 << 20, linger: .zero)
        let forwarder = Forwarder(config: config, sink: sink, writer: writer, logger: Logger(label: "bench"))
        return try await seconds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await forwarder.run() }
                while forwarder.health.snapshot.delivered < count { try await Task.sleep(for: .milliseconds(2)) }
                group.cancelAll()
            }
        }
    }

    /// A sink that takes each batch at once.
    struct Instant: EventSink {
        func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome { .delivered }
        func shutdown() async {}
    }

    /// The mock cluster with the bench's topic; its stdin stays open for its life.
    static func startCluster(_ mock: String, dir: String) throws -> (Process, FileHandle, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mock)
        process.arguments = ["3"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let commands = input.fileHandleForWriting
        commands.write(Data("topic \(topic) 3 3\ntopic \(topic)-eo 3 3\ntopic edge-agent.cursors 1 3\n".utf8))
        var text = ""
        while text.split(separator: "\n").count < 4 {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw BenchError("kafka-mock did not start") }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return (process, commands, String(text.split(separator: "\n")[0]))
    }

    /// `kafka-mock produce`: seconds for every record's delivery report.
    static func bareProducer(_ mock: String, bootstrap: String, file: String) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mock)
        process.arguments = ["produce", bootstrap, topic, file]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let seconds = Double(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw BenchError("the bare producer failed") }
        return seconds
    }

}
