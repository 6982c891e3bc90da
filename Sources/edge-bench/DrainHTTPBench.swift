import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation
import Logging
import ServiceLifecycle

/// `drain.http`: events/s from a 200,000-event backlog to the reference receiver over loopback in
/// 500-event batches, against the same batches delivered straight to the same kind of receiver
/// by the agent's own HTTP sink (the same client, configuration, connection reuse and bodies),
/// no outbox. Both are timed once warmed up (past the first 10,000 events: connection open,
/// receiver database created), in 5 rounds alternating the two; medians. The direct POSTs of
/// a plain client, cold, moved by 2x within the hour on this machine.
enum DrainHTTPBench {
    static let events = 200_000
    static let batch = 500
    static let warmUp = 10_000
    static let rounds = 5

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
        func rounded(_ rates: [Double]) -> JSONValue { .array(rates.map { .double($0.rounded()) }) }
        return BenchResult(
            bench: "drain.http", value: median(drained), unit: "events/s",
            baseline:
                "the same \(batch)-event batches delivered straight to the reference receiver by the agent's HTTP sink, no outbox (median of \(rounds), alternating, past the first \(warmUp) events)",
            baselineValue: median(direct), extra: [("drained", rounded(drained)), ("direct", rounded(direct))])
    }

    /// The forwarder draining a fresh backlog: events/s past the warm-up, and the events as stored.
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
        var warm = (at: ContinuousClock.now, delivered: 0)
        let end = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do { try await forwarder.run() } catch is CancellationError {}
            }
            while forwarder.health.snapshot.delivered < warmUp { try await Task.sleep(for: .milliseconds(1)) }
            warm = (ContinuousClock.now, forwarder.health.snapshot.delivered)
            while forwarder.health.snapshot.delivered < stored.count { try await Task.sleep(for: .milliseconds(1)) }
            let end = ContinuousClock.now
            group.cancelAll()
            try await group.waitForAll()
            return end
        }
        guard try status.status().sinks["mw"]?.pending == 0 else { throw BenchError("drain did not finish") }
        await writer.close()
        await receiver.close()
        return (Double(stored.count - warm.delivered) / (end - warm.at).exactSeconds, stored)
    }

    /// Baseline: the same batches, delivered one after another by the agent's HTTP sink, no outbox.
    static func post(_ stored: [StoredEvent], dir: String) async throws -> Double {
        let direct = try await Receiver(listen: HostPort("127.0.0.1:0")!, database: dir + "/direct.db") { _ in }
        let sink = try HTTPSink(.init(url: "http://127.0.0.1:\(direct.port)/v1/events"))
        let batches = stride(from: 0, to: stored.count, by: batch).map {
            Array(stored[$0..<min($0 + batch, stored.count)])
        }
        let cold = warmUp / batch
        func deliver(_ batches: ArraySlice<[StoredEvent]>) async throws {
            for events in batches {
                guard case .delivered = await sink.deliver(events) else { throw BenchError("a direct POST failed") }
            }
        }
        try await deliver(batches[..<cold])
        let rawSeconds = try await seconds { try await deliver(batches[cold...]) }
        await sink.shutdown()
        await direct.close()
        return Double(stored.count - cold * batch) / rawSeconds
    }
}
