import AsyncHTTPClient
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// `drain.http`: events/s from a 200,000-event backlog to the reference receiver over loopback in
/// 500-event batches, against the same batches POSTed straight to the same kind of receiver.
/// Median of 3 rounds, the agent's drain and the direct POSTs alternating: on this machine the
/// direct POSTs alone moved between 121k and 176k events/s within minutes, so one pair of runs
/// said more about the moment than about the agent.
enum DrainHTTPBench {
    static let events = 200_000
    static let batch = 500
    static let rounds = 3

    static func run() async throws -> BenchResult {
        var drained: [Double] = []
        var direct: [Double] = []
        for _ in 0..<rounds {
            let dir = scratchDirectory("drain")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (rate, stored) = try await drain(dir)
            drained.append(rate)
            direct.append(try await post(stored, dir: dir))
        }
        return BenchResult(
            bench: "drain.http", value: median(drained), unit: "events/s",
            baseline:
                "the same \(batch)-event bodies POSTed directly to the reference receiver, no outbox (median of \(rounds), alternating)",
            baselineValue: median(direct))
    }

    /// The forwarder draining a fresh backlog: events/s, and the events as stored.
    static func drain(_ dir: String) async throws -> (Double, [StoredEvent]) {
        let receiver = try await Receiver(listen: HostPort("127.0.0.1:0")!, database: dir + "/received.db") { _ in }
        let url = "http://127.0.0.1:\(receiver.port)/v1/events"
        var sink = SinkConfig(name: "mw", kind: .http(.init(url: url)))
        sink.batch = .init(maxEvents: batch, maxBytes: 4 << 20, linger: .zero)
        let options = OutboxOptions(
            directory: dir + "/agent", agentID: "bench", source: "/sites/s/lines/l/agents/bench",
            sync: .full, maxSize: 1 << 34, sinks: [.init(name: "mw", filter: .all)])
        let writer = try await OutboxWriter(options: options)
        for start in stride(from: 0, to: events, by: 1000) {
            try await writer.append((start..<start + 1000).map(sampleEvent))
        }
        let stored = try OutboxDatabase.openExisting(options).claim(
            sink: "mw", filter: .all, maxEvents: events + 1, maxBytes: .max
        ).events
        let logger = Logger(label: "bench")
        let forwarder = try Forwarder(config: sink, sink: HTTPSink(.init(url: url)), writer: writer, logger: logger)
        let status = try OutboxDatabase.openExisting(options)
        let drainSeconds = try await seconds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await forwarder.run() }
                while forwarder.health.snapshot.delivered < events + 1 { try await Task.sleep(for: .milliseconds(5)) }
                group.cancelAll()
            }
        }
        guard try status.status().sinks["mw"]?.pending == 0 else { throw BenchError("drain did not finish") }
        await writer.close()
        await receiver.close()
        return (Double(stored.count) / drainSeconds, stored)
    }

    /// Baseline: the same bodies, POSTed one after another by the same HTTP client, no outbox.
    static func post(_ stored: [StoredEvent], dir: String) async throws -> Double {
        let direct = try await Receiver(listen: HostPort("127.0.0.1:0")!, database: dir + "/direct.db") { _ in }
        let bodies = stride(from: 0, to: stored.count, by: batch).map { start in
            "[" + stored[start..<min(start + batch, stored.count)].map(\.body).joined(separator: ",") + "]"
        }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let rawSeconds = try await seconds {
            for body in bodies {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(direct.port)/v1/events")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/cloudevents-batch+json")
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await client.execute(request, timeout: .seconds(30))
                guard response.status == .ok else { throw BenchError("direct POST answered \(response.status)") }
                for try await _ in response.body {}
            }
        }
        try await client.shutdown()
        await direct.close()
        return Double(stored.count) / rawSeconds
    }
}
