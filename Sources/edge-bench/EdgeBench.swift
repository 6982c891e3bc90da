import Foundation

/// `edge-bench [NAME]`: every benchmark, or one; one JSON object per line.
@main
struct EdgeBench {
    static let benches: [(String, @Sendable () async throws -> BenchResult)] = [
        ("outbox.append.full", { try await OutboxAppendBench.run(sync: .full) }),
        ("outbox.append.normal", { try await OutboxAppendBench.run(sync: .normal) }),
        ("drain.http", { try await DrainHTTPBench.run() }),
    ]

    static func main() async {
        let wanted = CommandLine.arguments.dropFirst().first
        let chosen = benches.filter { wanted == nil || $0.0 == wanted }
        guard !chosen.isEmpty else {
            FileHandle.standardError.write(Data("edge-bench: unknown benchmark; one of: \(benches.map(\.0).joined(separator: ", "))\n".utf8))
            exit(64)
        }
        for (name, bench) in chosen {
            do {
                print(try await bench().json)
            } catch {
                FileHandle.standardError.write(Data("edge-bench: \(name) failed: \(error)\n".utf8))
                exit(1)
            }
        }
    }
}
