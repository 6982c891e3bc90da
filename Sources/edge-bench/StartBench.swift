import CSQLite
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation

/// `start.empty` and `start.outbox_1gib`: from exec to the first event the rules produce,
/// committed in the outbox (a `machine.state.changed` from the first poll of one device on a
/// loopback libmodbus server), median of 5 runs; with no outbox yet, and with a 1 GiB outbox of
/// pending events (the sink down, as after a long outage). Baseline: exec to exit of
/// `edge-agent --version`, median of 5 in the same run: the floor of loading the binary.
enum StartBench {
    static let runs = 5
    static let largeOutbox: Int64 = 1 << 30

    static func run() async throws -> [BenchResult] {
        let binary = try agentBinary()
        let dir = scratchDirectory("start")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plc = try ModbusServer(host: "127.0.0.1", port: 0)
        defer { plc.stop() }
        plc.write(holding: 100, [1])

        var floor: [Double] = []
        for _ in 0..<runs {
            floor.append(
                try await seconds {
                    let process = try spawn(binary, ["--version"])
                    process.waitUntilExit()
                })
        }
        var empty: [Double] = []
        for run in 0..<runs {
            let data = dir + "/empty\(run)"
            empty.append(try await firstEvent(binary, config: try config(dir, plc: plc.port, data: data), data: data))
        }
        let data = dir + "/large"
        let config = try config(dir, plc: plc.port, data: data)
        try await fill(data, to: largeOutbox)
        var large: [Double] = []
        for run in 0..<runs {
            // The stored state remembers the last run's state: each run starts with the other one.
            plc.write(holding: 100, [UInt16(run % 2)])
            large.append(try await firstEvent(binary, config: config, data: data))
        }
        let baseline = "exec to exit of edge-agent --version, median of \(runs)"
        return [
            BenchResult(
                bench: "start.empty", value: median(empty) * 1000, unit: "ms", baseline: baseline,
                baselineValue: median(floor) * 1000),
            BenchResult(
                bench: "start.outbox_1gib", value: median(large) * 1000, unit: "ms", baseline: baseline,
                baselineValue: median(floor) * 1000),
        ]
    }

    /// One device with a machine state register; the sink's port has no listener.
    static func config(_ dir: String, plc: Int, data: String) throws -> String {
        let path = data + ".yaml"
        try """
        version: 1
        agent: { id: bench, site: s, line: l, data_dir: \(data), http: { listen: "off" } }
        devices:
          - name: press-1
            modbus: { tcp: { host: 127.0.0.1, port: \(plc) } }
            poll_interval: 100ms
            tags: [ { name: state, area: holding, address: 100, type: uint16 } ]
        machines:
          - name: press-1
            state: { tag: press-1.state, map: { 0: stopped, 1: running } }
        sinks:
          - name: mw
            http: { url: "http://127.0.0.1:1/v1/events" }
        outbox: { max_size: 8GiB, sync: full }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Seconds from exec until the outbox holds a `machine.state.changed` it did not hold before.
    static func firstEvent(_ binary: String, config: String, data: String) async throws -> Double {
        let database = data + "/outbox.db"
        // By sequence: a scan of a 1 GiB table per look would measure the look, not the agent.
        let before = FileManager.default.fileExists(atPath: database) ? try CPUBench.lastSequence(database) : 0
        func stateChanged() -> Bool {
            let sql = "SELECT count(*) FROM events WHERE seq > \(before) AND type = 'machine.state.changed'"
            return ((try? CPUBench.query(database, sql) { sqlite3_column_int64($0, 0) }.first) ?? 0) > 0
        }
        let start = ContinuousClock.now
        let process = try spawn(binary, ["run", "--config", config])
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        while ContinuousClock.now - start < .seconds(60) {
            if FileManager.default.fileExists(atPath: database), stateChanged() {
                return (ContinuousClock.now - start).seconds
            }
            guard process.isRunning else { throw BenchError("the agent exited before its first event") }
            try await Task.sleep(for: .milliseconds(1))
        }
        throw BenchError("no event within 60 s of start")
    }

    /// Pending events of the sink `mw` until the outbox file is `size` bytes.
    static func fill(_ data: String, to size: Int64) async throws {
        let options = OutboxOptions(
            directory: data, agentID: "bench", source: "/sites/s/lines/l/agents/bench", sync: .normal,
            maxSize: 8 << 30, sinks: [.init(name: "mw", filter: .all)])
        let writer = try await OutboxWriter(options: options)
        var n = 0
        while ((try? FileManager.default.attributesOfItem(atPath: options.databasePath)[.size] as? Int64) ?? 0)
            < size
        {
            try await writer.append((n..<n + 10_000).map(sampleEvent))
            n += 10_000
        }
        await writer.close()
    }
}
