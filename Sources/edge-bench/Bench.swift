import EdgeAgent
import EdgeAgentCore
import Foundation

/// One benchmark result line: `{"bench", "value", "unit", "baseline", "baseline_value", "ratio"}`;
/// a bench that only reports (no baseline) leaves the last three out.
struct BenchResult {
    var bench: String
    var value: Double
    var unit: String
    var baseline: String?
    var baselineValue: Double
    /// Further figures a bench reports beside its value (`peak_rss_mib`).
    var extra: [(String, JSONValue)] = []

    var json: String {
        var fields: [(String, JSONValue)] = [
            ("bench", .string(bench)), ("value", .double(round(value * 100) / 100)), ("unit", .string(unit)),
        ]
        if let baseline {
            let ratio = baselineValue == 0 ? 0 : value / baselineValue
            fields += [
                ("baseline", .string(baseline)), ("baseline_value", .double(round(baselineValue * 100) / 100)),
                ("ratio", .double(round(ratio * 1000) / 1000)),
            ]
        }
        return JSONValue.object(fields + extra).json
    }
}

extension Duration {
    /// To the nanosecond (`seconds` stops at the millisecond: a 10 ms baseline would be off by up to 10%).
    var exactSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    return (ContinuousClock.now - start).exactSeconds
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return (ContinuousClock.now - start).exactSeconds
}

/// The agent a bench runs as a subprocess: the `edge-agent` next to this bench (`make bench` builds
/// it as the package ships it), or `EDGE_AGENT=PATH` to measure another build.
func agentBinary() throws -> String {
    let binary =
        ProcessInfo.processInfo.environment["EDGE_AGENT"]
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .path + "/edge-agent"
    guard FileManager.default.isExecutableFile(atPath: binary) else {
        throw BenchError("no \(binary): run make bench (or set EDGE_AGENT)")
    }
    return binary
}

/// Starts `executable` with its output discarded (a bench reads what it measures elsewhere).
func spawn(_ executable: String, _ arguments: [String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

func scratchDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "edge-bench-\(name)-\(UUID().uuidString.prefix(8))"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A production event of the size the rules emit.
func sampleEvent(_ n: Int) -> Event {
    Event(
        type: .productionCompleted, subject: "press-1",
        time: Timestamp(milliseconds: 1_795_000_000_000 + Int64(n) * 250),
        data: [
            "machine": "press-1", "quantity": .int(Int64(n % 7 + 1)), "unit": "pcs",
            "counter": ["tag": "press-1.good_count", "from": .int(Int64(n)), "to": .int(Int64(n + 1))],
            "work_order": "WO-2026-004711",
        ])
}

/// The middle value of `values` (the upper middle of an even count).
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
