import CModbus
import CSQLite
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation
import Synchronization

/// `cpu.events` and `cpu.telemetry`: the share of one core the agent uses on a line, the peer
/// gateway's workload: 500 holding registers on a loopback libmodbus server, polled every 100 ms,
/// every register changing every 100 ms, forwarded over HTTP to a receiver in this process.
/// - events: five machines' state and counter rules on ten of the registers (a state change every
///   10 s, a part every second per machine); the other 490 are read and decoded, not forwarded.
/// - telemetry: the same, and every register `publish: on_change` (about 5,000 events/s).
///
/// value: the agent's CPU % of one core over 30 s after a 5 s warm-up (utime + stime of every
/// thread, `/proc/PID/stat`); baseline of `cpu.events`: the floor of acquiring and storing the
/// same data, measured in this run: a bare libmodbus loop reading the same 500 registers at the
/// same rate, plus the rows the agent committed in the window, taken from its outbox and inserted
/// again with nothing but the SQLite C API in 1,000-row commits (thread CPU time of each).
/// `cpu.telemetry` has none: its target is absolute (5 % of one core). Also reported: the
/// agent's context switches per second (all threads, `/proc/PID/task/*/status`) and its events/s.
enum CPUBench {
    static let registers = 500
    static let machines = 5
    static let warmUp = Duration.seconds(5)
    static let window = Duration.seconds(30)

    static func run() async throws -> [BenchResult] {
        let binary = try agentBinary()
        let dir = scratchDirectory("cpu")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plc = try ModbusServer(host: "127.0.0.1", port: 0)
        defer { plc.stop() }
        let line = LineSimulation(plc)
        defer { line.stop() }
        let sink = try await SmallHTTPServer(listen: HostPort("127.0.0.1:0")!) { _ in
            .init(.ok, "{}", contentType: "application/json")
        }
        let pollFloor = try pollLoopCPU(port: plc.port, for: .seconds(10))

        var results: [BenchResult] = []
        for telemetry in [false, true] {
            let name = telemetry ? "telemetry" : "events"
            let config = dir + "/\(name).yaml"
            try self.config(plc: plc.port, sink: sink.port, data: dir + "/\(name)", telemetry: telemetry)
                .write(toFile: config, atomically: true, encoding: .utf8)
            let run = try await measure(binary, config: config, database: dir + "/\(name)/outbox.db")
            // Telemetry has its absolute target (5 % of one core) instead of a floor.
            let storeFloor = telemetry ? 0 : try insertCPU(run.rows, path: dir + "/\(name)-raw.db")
            results.append(
                BenchResult(
                    bench: "cpu.\(name)", value: run.cpu * 100, unit: "% of one core",
                    baseline: telemetry
                        ? nil
                        : "bare libmodbus reads of the 500 registers every 100 ms + the agent's \(run.rows.count) rows inserted through the SQLite C API in 1,000-row commits (synchronous=FULL)",
                    baselineValue: (pollFloor + storeFloor / window.seconds) * 100,
                    extra: [
                        ("events_per_s", .double((Double(run.rows.count) / window.seconds).rounded())),
                        ("context_switches_per_s", .double(run.switches.rounded())),
                    ]))
        }
        await sink.close()
        return results
    }

    /// Register `i` of 500, `tN`; machines `m0`..`m4` on `t0`..`t4` (state) and `t5`..`t9` (count).
    static func config(plc: Int, sink: Int, data: String, telemetry: Bool) -> String {
        let publish = telemetry ? ", publish: on_change" : ""
        let tags = (0..<registers).map {
            "      - { name: t\($0), area: holding, address: \($0), type: uint16\(publish) }"
        }
        let rules = (0..<machines).map {
            """
              - name: m\($0)
                state: { tag: plc.t\($0), map: { 0: stopped, 1: running }, downtime: [stopped] }
                counters: [ { tag: plc.t\(machines + $0), event: production.completed } ]
            """
        }
        return """
            version: 1
            agent: { id: bench, site: s, line: l, data_dir: \(data), http: { listen: "off" } }
            devices:
              - name: plc
                modbus: { tcp: { host: 127.0.0.1, port: \(plc) } }
                poll_interval: 100ms
                tags:
            \(tags.joined(separator: "\n"))
            machines:
            \(rules.joined(separator: "\n"))
            sinks:
              - name: mw
                http: { url: "http://127.0.0.1:\(sink)/v1/events" }
            outbox: { sync: full }
            """
    }

    /// The agent's CPU share (1.0 = one core), its context switches per second and the rows it
    /// committed during the window.
    static func measure(_ binary: String, config: String, database: String) async throws -> (
        cpu: Double, switches: Double, rows: [StoredEvent]
    ) {
        try await warmedUp(binary, config: config, warmUp: warmUp) { pid, cpu0, switches0 in
            let first = try lastSequence(database)
            try await Task.sleep(for: window)
            guard let cpu1 = cpuTicks(pid), let switches1 = contextSwitches(pid) else {
                throw BenchError("the agent exited while measured")
            }
            let last = try lastSequence(database)
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            return (
                Double(cpu1 - cpu0) / ticks / window.seconds, Double(switches1 - switches0) / window.seconds,
                try rows(database, after: first, through: last)
            )
        }
    }

    /// Runs `body` on the agent started with `config`, once it has run for `warmUp`, with its pid,
    /// CPU ticks and context switches at that point; the agent is stopped after `body`.
    static func warmedUp<T>(
        _ binary: String, config: String, warmUp: Duration,
        _ body: (_ pid: Int32, _ cpu: Int, _ switches: Int) async throws -> T
    ) async throws -> T {
        let process = try spawn(binary, ["run", "--config", config])
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let pid = process.processIdentifier
        try await Task.sleep(for: warmUp)
        guard let cpu = cpuTicks(pid), let switches = contextSwitches(pid) else {
            throw BenchError("the agent exited during the warm-up")
        }
        return try await body(pid, cpu, switches)
    }

    /// utime + stime of every thread of `pid`, in clock ticks.
    static func cpuTicks(_ pid: Int32) -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        // Fields 14 and 15 of proc(5); the first after the name is field 3.
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    /// Voluntary and involuntary context switches of every thread of `pid`.
    static func contextSwitches(_ pid: Int32) -> Int? {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
        return tasks.reduce(0) { total, task in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)) ?? ""
            return total
                + status.split(separator: "\n").filter { $0.contains("ctxt_switches:") }
                .reduce(0) { $0 + (Int($1.split(separator: "\t").last ?? "") ?? 0) }
        }
    }

    static func lastSequence(_ path: String) throws -> Int64 {
        try query(path, "SELECT coalesce(max(seq), 0) FROM events") { sqlite3_column_int64($0, 0) }.first ?? 0
    }

    static func rows(_ path: String, after first: Int64, through last: Int64) throws -> [StoredEvent] {
        try query(path, "SELECT seq, id, type, time_ms, body FROM events WHERE seq > \(first) AND seq <= \(last)") {
            StoredEvent(
                sequence: sqlite3_column_int64($0, 0), id: String(cString: sqlite3_column_text($0, 1)),
                type: String(cString: sqlite3_column_text($0, 2)),
                time: Timestamp(milliseconds: sqlite3_column_int64($0, 3)),
                body: String(cString: sqlite3_column_text($0, 4))[...])
        }
    }

    /// `sql`'s rows through `row`, on a read-only connection beside the agent's.
    static func query<T>(_ path: String, _ sql: String, _ row: (OpaquePointer) -> T) throws -> [T] {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else {
            sqlite3_close(db)
            throw BenchError("cannot open \(path)")
        }
        defer { sqlite3_close(db) }
        sqlite3_busy_timeout(db, 5000)
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw BenchError(String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(statement) }
        var result: [T] = []
        while sqlite3_step(statement) == SQLITE_ROW { result.append(row(statement)) }
        return result
    }

    /// CPU seconds of this thread.
    static func threadCPU() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// The CPU share of reading the 500 registers every 100 ms with bare libmodbus (blocks of 125).
    static func pollLoopCPU(port: Int, for duration: Duration) throws -> Double {
        guard let context = modbus_new_tcp("127.0.0.1", Int32(port)), modbus_connect(context) == 0 else {
            throw BenchError("raw connect failed")
        }
        defer {
            modbus_close(context)
            modbus_free(context)
        }
        var buffer = [UInt16](repeating: 0, count: 125)
        let cycles = Int(duration.seconds * 10)
        let start = threadCPU()
        var next = ContinuousClock.now
        for _ in 0..<cycles {
            for block in stride(from: 0, to: registers, by: 125) {
                guard modbus_read_registers(context, Int32(block), 125, &buffer) == 125 else {
                    throw BenchError("raw read failed")
                }
            }
            next += .milliseconds(100)
            Thread.sleep(forTimeInterval: max(0, (next - ContinuousClock.now).seconds))
        }
        return (threadCPU() - start) / duration.seconds
    }

    /// CPU seconds to insert `rows` again in 1,000-row commits through the C API alone.
    static func insertCPU(_ rows: [StoredEvent], path: String) throws -> Double {
        let start = threadCPU()
        _ = try OutboxAppendBench.rawInserts(rows, path: path, sync: .full)
        return threadCPU() - start
    }

    /// Moves the registers every 100 ms: `t0`..`t4` (states) flip every 10 s, `t5`..`t9`
    /// (counters) count one part a second, the other 490 change every time.
    final class LineSimulation: Sendable {
        private let running = Atomic<Bool>(true)

        init(_ plc: ModbusServer) {
            let thread = Thread { [self] in
                var tick = 0
                while self.running.load(ordering: .relaxed) {
                    var values = [UInt16](repeating: UInt16(truncatingIfNeeded: tick), count: registers)
                    for m in 0..<machines {
                        values[m] = UInt16((tick / 100 + m) % 2)
                        values[machines + m] = UInt16(truncatingIfNeeded: tick / 10)
                    }
                    plc.write(holding: 0, values)
                    tick += 1
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            thread.start()
        }

        func stop() { running.store(false, ordering: .relaxed) }
    }
}
