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
        ("start", { try await StartBench.run() }),
    ]

    static func main() async {
        // The agent's hot paths count into Prometheus when it runs: measure them that way.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
        let wanted = CommandLine.arguments.dropFirst().first
        // `modbus` runs `modbus.requests` and `modbus.poll` together, `cpu` runs `cpu.events` and
        // `cpu.telemetry`, `start` runs `start.empty` and `start.outbox_1gib`: each pair shares one setup.
        let chosen = benches.filter { wanted == nil || $0.0 == wanted || (wanted?.hasPrefix($0.0 + ".") ?? false) }
        guard !chosen.isEmpty else {
            FileHandle.standardError.write(
                Data("edge-bench: unknown benchmark; one of: \(benches.map(\.0).joined(separator: ", "))\n".utf8))
            exit(64)
        }
        for (name, bench) in chosen {
            do {
                for result in try await bench() where wanted == nil || wanted == name || result.bench == wanted {
                    print(result.json)
                }
            } catch {
                FileHandle.standardError.write(Data("edge-bench: \(name) failed: \(error)\n".utf8))
                exit(1)
            }
        }
    }
}
