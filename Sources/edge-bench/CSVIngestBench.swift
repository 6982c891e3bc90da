import EdgeAgent
import EdgeAgentCore
import Foundation
import Logging
import ServiceLifecycle

/// `csv.ingest`: rows/s of a 1,000,000-row long-layout historian file (one machine's state and
/// counter plus 20 other tags per time stamp, the state changing at every time stamp) through
/// the drop folder, both passes, the rules and the outbox (sync full). Baseline: what an
/// integrator scripts by hand, the sqlite3 shell loading the same file into a table
/// (`sqlite3 DB -cmd '.mode csv' '.import FILE t'`, default settings), which does none of the
/// agent's work (no rules, no exactly-once record, no events). Median of 3 rounds, the agent's
/// ingest and the shell's alternating. Also reports the peak resident memory of this process
/// while ingesting (`peak_rss_mib`, VmHWM after resetting it, the highest of the rounds: run
/// this bench alone, as `edge-bench` does, or it reads what earlier benches left), the events
/// the file produced, `raw_inserts_only_rows_s` (the rows/s if inserting those events were all
/// an ingest did) and `ingest_cpu_s`: the CPU time (user + system, all threads) of the median
/// ingest: on this 2-core machine no ingest is faster than half of it.
enum CSVIngestBench {
    static let rows = 1_000_000
    static let tagsPerTime = 22
    static let rounds = 3

    static func run() async throws -> BenchResult {
        let dir = scratchDirectory("csv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/export.csv"
        try write(file)
        let shell = try sqliteShell()

        var ingests: [Ingest] = []
        var imports: [Double] = []
        for round in 0..<rounds {
            ingests.append(try await ingest(file, in: dir + "/agent\(round)"))
            imports.append(try importSeconds(shell, file, database: dir + "/shell\(round).db"))
        }
        let middle = ingests.sorted { $0.seconds < $1.seconds }[rounds / 2]
        let produced = try OutboxDatabase.openExisting(middle.options).claim(
            sink: "mw", filter: .all, maxEvents: rows, maxBytes: .max
        ).events.dropFirst()
        // What inserting the events alone would allow: nothing but SQLite's C API in 1,000-row
        // commits (synchronous=FULL), as `outbox.append.full`'s baseline.
        let inserts = try OutboxAppendBench.rawInserts(Array(produced), path: dir + "/raw.db", sync: .full)
        let peak = ingests.map(\.peakMiB).max() ?? 0
        return BenchResult(
            bench: "csv.ingest", value: Double(rows) / middle.seconds, unit: "rows/s",
            baseline:
                "the sqlite3 shell importing the same file (.mode csv, .import, default settings; median of \(rounds), alternating)",
            baselineValue: Double(rows) / median(imports),
            extra: [
                ("peak_rss_mib", .double(round(peak * 10) / 10)), ("events", .int(Int64(produced.count))),
                ("raw_inserts_only_rows_s", .double(round(Double(rows) / inserts))),
                ("ingest_s", .double(round(middle.seconds * 1000) / 1000)),
                ("ingest_cpu_s", .double(round(middle.cpuSeconds * 1000) / 1000)),
                ("import_s", .double(round(median(imports) * 1000) / 1000)),
            ])
    }

    struct Ingest {
        var seconds: Double
        var cpuSeconds: Double
        var peakMiB: Double
        var options: OutboxOptions
    }

    /// The agent's historian, rules and outbox taking a copy of `file` from a fresh drop folder
    /// into a fresh outbox under `dir`.
    static func ingest(_ file: String, in dir: String) async throws -> Ingest {
        let drop = dir + "/drop"
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: file, toPath: drop + "/export.csv")
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
        let ingestor = HistorianIngestor(config: config, bus: bus, writer: writer, rules: rules, logger: logger)
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
        return Ingest(seconds: ingest, cpuSeconds: cpu, peakMiB: peak, options: options)
    }

    /// The sqlite3 command-line shell on `PATH` (`make deps` installs it).
    static func sqliteShell() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { $0 + "/sqlite3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw BenchError("no sqlite3 shell: run make deps") }
        return path
    }

    /// Exec to exit of the sqlite3 shell importing `file` into a new table of a new database.
    static func importSeconds(_ shell: String, _ file: String, database: String) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: shell)
        process.arguments = [database, "-cmd", ".mode csv", ".import \(file) t"]
        process.standardOutput = FileHandle.nullDevice
        let elapsed = try seconds {
            try process.run()
            process.waitUntilExit()
        }
        guard process.terminationStatus == 0 else {
            throw BenchError("sqlite3 .import exited \(process.terminationStatus)")
        }
        return elapsed
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
