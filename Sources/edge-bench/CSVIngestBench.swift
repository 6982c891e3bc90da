import EdgeAgent
import EdgeAgentCore
import Foundation
import Logging
import ServiceLifecycle

/// `csv.ingest`: rows/s of a 1,000,000-row long-layout historian file (one machine's state and
/// counter plus 20 other tags per time stamp, the state changing at every time stamp) through
/// the drop folder, both passes, the rules and the outbox (sync full). Baseline: a plain
/// buffered line count of the same file. Also reports the process's peak resident memory
/// while ingesting (`peak_rss_mib`, VmHWM after resetting it), the events the file produced, and
/// `raw_inserts_only_rows_s`: the rows/s if inserting those events were all an ingest did, and
/// `ingest_cpu_s`: the CPU time (user + system, all threads) the ingest took: on this 2-core
/// machine no ingest is faster than half of it.
enum CSVIngestBench {
    static let rows = 1_000_000
    static let tagsPerTime = 22

    static func run() async throws -> BenchResult {
        let dir = scratchDirectory("csv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let drop = dir + "/drop"
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        let file = drop + "/export.csv"
        try write(file)

        let lines = try seconds { _ = try countLines(file) }
        let counted = try countLines(file)
        guard counted == rows + 1 else { throw BenchError("line count \(counted)") }

        var config = HistorianConfig(name: "bench", directory: drop, timestampColumn: "Timestamp")
        config.tagColumn = "TagName"
        config.valueColumn = "Value"
        config.timestampFormat = "unix_ms"
        config.settle = .zero
        config.tags = [("M.STATE", "m.state"), ("M.COUNT", "m.count")] + (1...20).map { ("M.T\($0)", "m.t\($0)") }
        let rules = RuleSet(machines: [
            RuleSet.Machine(
                name: "m",
                state: MachineConfig.StateRule(
                    source: .map(tag: "m.state", codes: [(0, "stopped"), (1, "running")]), downtime: ["stopped"]),
                counters: [RuleSet.Counter(tag: "m.count", event: .productionCompleted, range: 65536)])
        ])
        let options = OutboxOptions(
            directory: dir + "/agent", agentID: "bench", source: "/sites/s/lines/l/agents/bench",
            sync: .full, maxSize: 1 << 34, sinks: [.init(name: "mw", filter: .all)])
        let writer = try await OutboxWriter(options: options)
        let bus = SignalBus()
        let logger = Logger(label: "bench")
        let pipeline = Pipeline(rules: rules, bus: bus, writer: writer, logger: logger, tick: nil)
        let ingestor = HistorianIngestor(config: config, bus: bus, writer: writer, textTags: [], logger: logger)
        let group = ServiceGroup(services: [pipeline, ingestor], logger: logger)
        resetPeakRSS()
        // From start to the file in `processed/` (moved only after its last events committed);
        // stopping the services afterwards (the folder's watcher finishes its half-second wait)
        // is not ingest time.
        var ingest = 0.0
        let cpuBefore = processCPUSeconds()
        var cpu = 0.0
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            let start = ContinuousClock.now
            tasks.addTask { try await group.run() }
            while !FileManager.default.fileExists(atPath: drop + "/processed/export.csv") {
                try await Task.sleep(for: .milliseconds(5))
            }
            ingest = (ContinuousClock.now - start).exactSeconds
            cpu = processCPUSeconds() - cpuBefore
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let peak = peakRSSMiB()
        await writer.close()
        // The floor under any ingest: the events the file produced, inserted with nothing but
        // SQLite's C API in 1,000-row commits (synchronous=FULL), as `outbox.append.full`'s baseline.
        let produced = try OutboxDatabase.openExisting(options).claim(
            sink: "mw", filter: .all, maxEvents: rows, maxBytes: .max
        ).events.dropFirst()
        let inserts = try OutboxAppendBench.rawInserts(Array(produced), path: dir + "/raw.db", sync: .full)
        return BenchResult(
            bench: "csv.ingest", value: Double(rows) / ingest, unit: "rows/s",
            baseline: "a plain 64 KiB-buffered line count of the same file", baselineValue: Double(rows) / lines,
            extra: [
                ("peak_rss_mib", .double(round(peak * 10) / 10)), ("events", .int(Int64(produced.count))),
                ("raw_inserts_only_rows_s", .double(round(Double(rows) / inserts))),
                ("ingest_s", .double(round(ingest * 1000) / 1000)), ("ingest_cpu_s", .double(round(cpu * 1000) / 1000)),
            ])
    }

    static func write(_ path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = FileHandle(forWritingAtPath: path)!
        defer { try? handle.close() }
        var text = "Timestamp,TagName,Value\n"
        let times = rows / tagsPerTime + 1
        var written = 0
        for i in 0..<times where written < rows {
            let t = 1_795_000_000_000 + Int64(i) * 1000
            let values =
                ["M.STATE,\(i % 2)", "M.COUNT,\(i % 65536)"]
                + (1...20).map { "M.T\($0),\(Double(i % 1000) / 10 + Double($0))" }
            for value in values where written < rows {
                text += "\(t),\(value)\n"
                written += 1
            }
            if text.utf8.count > 1 << 20 {
                handle.write(Data(text.utf8))
                text = ""
            }
        }
        handle.write(Data(text.utf8))
    }

    static func countLines(_ path: String) throws -> Int {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BenchError("cannot open \(path)") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var count = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return count }
            for i in 0..<n where buffer[i] == 10 { count += 1 }
        }
    }

    /// User + system CPU time of this process (all threads) so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func resetPeakRSS() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    static func peakRSSMiB() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}
