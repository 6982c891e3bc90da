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
/// a plain client, cold, moved by 2x within the hour on this machine. Each also reports the
/// process's CPU time per event, steadier than the rates on a shared machine.
enum DrainHTTPBench {
    static let events = 200_000
    static let batch = 500
    static let warmUp = 10_000
    static let rounds = 5

    static func run() async throws -> BenchResult {
        var drained: [Double] = []
        var direct: [Double] = []
        var drainedCPU: [Double] = []
        var directCPU: [Double] = []
        for _ in 0..<rounds {
            let dir = scratchDirectory("drain")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (rate, cpuPerEvent, stored) = try await drain(dir)
            drained.append(rate)
            drainedCPU.append(cpuPerEvent)
            let (directRate, directCPUPerEvent) = try await post(stored, dir: dir)
            direct.append(directRate)
            directCPU.append(directCPUPerEvent)
        }
        func rounded(_ rates: [Double]) -> JSONValue { .array(rates.map { .double($0.rounded()) }) }
        func microseconds(_ cpu: [Double]) -> JSONValue { .array(cpu.map { .double(($0 * 100).rounded() / 100) }) }
        return BenchResult(
            bench: "drain.http", value: median(drained), unit: "events/s",
            baseline:
                "the same \(batch)-event batches delivered straight to the reference receiver by the agent's HTTP sink, no outbox (median of \(rounds), alternating, past the first \(warmUp) events)",
            baselineValue: median(direct),
            extra: [
                ("drained", rounded(drained)), ("direct", rounded(direct)),
                ("drained_cpu_us_per_event", microseconds(drainedCPU)),
                ("direct_cpu_us_per_event", microseconds(directCPU)),
            ])
    }

    /// The forwarder draining a fresh backlog: events/s past the warm-up, the process's CPU time
    /// per event meanwhile (µs, every thread: the receiver's too), and the events as stored.
    static func drain(_ dir: String) async throws -> (Double, Double, [StoredEvent]) {
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
        var cpu = 0.0
        let start = warm
        let end = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do { try await forwarder.run() } catch is CancellationError {}
            }
            try await waitUntil(forwarder, delivered: warmUp, since: start)
            warm = (ContinuousClock.now, forwarder.health.snapshot.delivered)
            cpu = CSVIngestBench.processCPUSeconds()
            try await waitUntil(forwarder, delivered: stored.count, since: warm)
            let end = ContinuousClock.now
            cpu = CSVIngestBench.processCPUSeconds() - cpu
            group.cancelAll()
            try await group.waitForAll()
            return end
        }
        guard try status.status().sinks["mw"]?.pending == 0 else { throw BenchError("drain did not finish") }
        await writer.close()
        await receiver.close()
        let timed = Double(stored.count - warm.delivered)
        return (timed / (end - warm.at).exactSeconds, cpu * 1e6 / timed, stored)
    }

    /// Returns once `forwarder` has delivered `count` events, within a millisecond. It sleeps half
    /// the time the rate since `since` leaves, at most 20 ms (the rate of the first batches, a
    /// connection opening, is no guide), so it looks often only near the end: a watcher
    /// that woke every millisecond throughout ran on the drain's side only (the direct side's
    /// own loop is its end), and its wake-ups changed the drain it timed.
    static func waitUntil(
        _ forwarder: Forwarder, delivered count: Int, since: (at: ContinuousClock.Instant, delivered: Int)
    ) async throws {
        while true {
            let delivered = forwarder.health.snapshot.delivered
            if delivered >= count { return }
            var pause = Duration.milliseconds(1)
            if delivered > since.delivered {
                let left =
                    (ContinuousClock.now - since.at) * Double(count - delivered)
                    / Double(delivered - since.delivered)
                pause = max(pause, min(left / 2, .milliseconds(20)))
            }
            try await Task.sleep(for: pause)
        }
    }

    /// Baseline: the same batches, delivered one after another by the agent's HTTP sink, no outbox:
    /// events/s past the warm-up and the process's CPU time per event meanwhile (µs).
    static func post(_ stored: [StoredEvent], dir: String) async throws -> (Double, Double) {
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
        let cpu = CSVIngestBench.processCPUSeconds()
        let rawSeconds = try await seconds { try await deliver(batches[cold...]) }
        let cpuSeconds = CSVIngestBench.processCPUSeconds() - cpu
        await sink.shutdown()
        await direct.close()
        let timed = Double(stored.count - cold * batch)
        return (timed / rawSeconds, cpuSeconds * 1e6 / timed)
    }
}
