import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation
import Logging

/// `recovery.lag`: the reference receiver is down for 5 s, then for 60 s, while the forwarder
/// holds a backlog; value = the worst time from the receiver listening again to its first
/// accepted batch. Baseline: what the default backoff alone would give for that outage (its
/// expected value, from the retry policy's own delays, simulated in the same run).
enum RecoveryLagBench {
    static let outages: [Duration] = [.seconds(5), .seconds(60)]

    static func run() async throws -> BenchResult {
        var worst: (lag: Double, outage: Duration) = (0, .zero)
        for outage in outages {
            let lag = try await measure(outage: outage)
            if lag >= worst.lag { worst = (lag, outage) }
        }
        let expected = expectedBackoffLag(outage: worst.outage, policy: RetryPolicy(SinkConfig.Retry()))
        return BenchResult(
            bench: "recovery.lag", value: worst.lag, unit: "s",
            baseline:
                "expected lag of the default backoff alone (500ms x2 up to 10s, full jitter) after a \(Int(worst.outage.seconds)) s outage",
            baselineValue: expected)
    }

    static func measure(outage: Duration) async throws -> Double {
        let dir = scratchDirectory("recovery")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A port nobody listens on until the receiver comes back.
        let probe = try await Receiver(listen: HostPort("127.0.0.1:0")!, database: dir + "/probe.db") { _ in }
        let port = probe.port
        await probe.close()
        let url = "http://127.0.0.1:\(port)/v1/events"
        let sink = SinkConfig(name: "mw", kind: .http(.init(url: url)))
        let options = OutboxOptions(
            directory: dir + "/agent", agentID: "bench", source: "/sites/s/lines/l/agents/bench",
            sinks: [.init(name: "mw", filter: .all)])
        let writer = try await OutboxWriter(options: options)
        try await writer.append((0..<1000).map(sampleEvent))
        let forwarder = Forwarder(
            config: sink, sink: try HTTPSink(.init(url: url)), writer: writer, logger: Logger(label: "bench"))
        let lag = try await withThrowingTaskGroup(of: Double?.self) { group in
            group.addTask {
                try await forwarder.run()
                return nil
            }
            try await Task.sleep(for: outage)
            let receiver = try await Receiver(listen: HostPort("127.0.0.1:\(port)")!, database: dir + "/received.db") {
                _ in
            }
            let up = ContinuousClock.now
            while forwarder.health.snapshot.delivered == 0 { try await Task.sleep(for: .milliseconds(1)) }
            let lag = (ContinuousClock.now - up).seconds
            group.cancelAll()
            await receiver.close()
            return lag
        }
        await writer.close()
        return lag
    }

    /// The mean lag if the forwarder only waited out its backoff: attempts at 0, d1, d1+d2, ...
    /// with each d uniform in [0, ceiling]; the first attempt at or after the outage's end succeeds.
    static func expectedBackoffLag(outage: Duration, policy: RetryPolicy, runs: Int = 100_000) -> Double {
        var random = FastRandom()
        let end = outage.seconds
        var total = 0.0
        for _ in 0..<runs {
            var t = 0.0, attempt = 0
            while t < end {
                attempt += 1
                t += policy.delay(attempt: attempt, using: &random).seconds
            }
            total += t - end
        }
        return total / Double(runs)
    }
}
