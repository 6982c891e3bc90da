import Foundation
import Metrics
import Prometheus

/// `edge-bench [NAME]`: every benchmark, or one; one JSON object per line.
@main
struct EdgeBench {
    static let benches: [(String, @Sendable () async throws -> [BenchResult])] = [
        ("outbox.append.full", { [try await OutboxAppendBench.run(sync: .full)] }),
        ("outbox.append.normal", { [try await OutboxAppendBench.run(sync: .normal)] }),
        ("drain.http", { [try await DrainHTTPBench.run()] }),
        ("modbus", { try ModbusBench.run() }),
        ("mqtt.drain", { [try await MQTTDrainBench.run()] }),
        ("kafka.drain", { [try await KafkaDrainBench.run()] }),
        ("csv.ingest", { [try await CSVIngestBench.run()] }),
        ("recovery.lag", { [try await RecoveryLagBench.run()] }),
        ("rules.eval", { [try RulesEvalBench.run()] }),
        ("footprint", { [try await FootprintBench.run()] }),
        ("cpu", { try await CPUBench.run() }),
        ("cpu.scale", { [try await CPUScaleBench.run()] }),
        ("start", { try await StartBench.run() }),
    ]

    static func main() async {
        // The agent's hot paths count into Prometheus when it runs: measure them that way.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
        guard let wanted = CommandLine.arguments.dropFirst().first else { return runEach() }
        // `modbus` runs `modbus.requests` and `modbus.poll` together, `cpu` runs `cpu.events` and
        // `cpu.telemetry`, `start` runs `start.empty` and `start.outbox_1gib`: each pair shares one setup.
        let exact = benches.filter { $0.0 == wanted }
        let chosen = exact.isEmpty ? benches.filter { wanted.hasPrefix($0.0 + ".") } : exact
        guard let (name, bench) = chosen.first else {
            FileHandle.standardError.write(
                Data("edge-bench: unknown benchmark; one of: \(benches.map(\.0).joined(separator: ", "))\n".utf8))
            exit(64)
        }
        do {
            for result in try await bench() where wanted == name || result.bench == wanted {
                print(result.json)
            }
        } catch {
            FileHandle.standardError.write(Data("edge-bench: \(name) failed: \(error)\n".utf8))
            exit(1)
        }
    }

    /// Every bench, each in a process of its own: what one leaves behind (a peak resident size,
    /// threads, event loops) is not measured by the next.
    static func runEach() {
        let this = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        for (name, _) in benches {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: this)
            process.arguments = [name]
            do {
                try process.run()
            } catch {
                FileHandle.standardError.write(Data("edge-bench: cannot start \(name): \(error)\n".utf8))
                exit(1)
            }
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { exit(1) }
        }
    }
}
