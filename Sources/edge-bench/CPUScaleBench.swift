import AsyncHTTPClient
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import EdgeAgentTools
import Foundation
import Synchronization

/// `cpu.scale`: a large line. 10,000 holding registers over 20 devices (a loopback libmodbus
/// server each, 500 registers, every value changing every 100 ms) polled every 100 ms; 20
/// machines with a state, two counters, a material and a quality check each; events forwarded
/// over HTTP to a receiver in this process. value: the agent's CPU % of one core (utime + stime
/// of every thread) over 30 s after a 5 s warm-up. Anchor: NeuronEX 3.2.1 publishes 21 % CPU and
/// 189 MB for 10,000 Modbus tags at 100 ms (on a 4-core Xeon). Also `rss_mib` (VmRSS at the end
/// of the window) and `peak_rss_mib` (VmHWM), the slowest device's and the mean polls/s (the
/// agent's own `edge_modbus_poll_duration_seconds_count`), events/s and context switches/s.
enum CPUScaleBench {
    static let devices = 20
    static let registers = 500
    static let warmUp = Duration.seconds(5)
    static let window = Duration.seconds(30)

    static func run() async throws -> BenchResult {
        let binary = try agentBinary()
        let dir = scratchDirectory("scale")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plcs = try (0..<devices).map { _ in try ModbusServer(host: "127.0.0.1", port: 0) }
        defer { for plc in plcs { plc.stop() } }
        let line = LineSimulation(plcs)
        defer { line.stop() }
        let sink = try await SmallHTTPServer(listen: HostPort("127.0.0.1:0")!) { _ in
            .init(.ok, "{}", contentType: "application/json")
        }
        let status = freePort()
        let config = dir + "/agent.yaml"
        try self.config(plcs: plcs.map(\.port), sink: sink.port, status: status, data: dir + "/data")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let database = dir + "/data/outbox.db"
        return try await CPUBench.warmedUp(binary, config: config, warmUp: warmUp) { pid, cpu0, switches0 in
            let polls0 = try await polls(port: status)
            let first = try CPUBench.lastSequence(database)
            try await Task.sleep(for: window)
            guard let cpu1 = CPUBench.cpuTicks(pid), let switches1 = CPUBench.contextSwitches(pid),
                let memory = FootprintBench.memory(pid: pid)
            else { throw BenchError("the agent exited while measured") }
            let polls1 = try await polls(port: status)
            let events = try CPUBench.lastSequence(database) - first
            await sink.close()
            let rates = (0..<devices).map {
                Double(polls1["d\($0)", default: 0] - polls0["d\($0)", default: 0]) / window.seconds
            }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            return BenchResult(
                bench: "cpu.scale", value: Double(cpu1 - cpu0) / ticks / window.seconds * 100, unit: "% of one core",
                baseline: "NeuronEX 3.2.1, published: 21 % CPU, 189 MB for 10,000 Modbus tags at 100 ms (4-core Xeon)",
                baselineValue: 21,
                extra: [
                    ("rss_mib", .double((Double(memory.rss) / 102.4).rounded() / 10)),
                    ("peak_rss_mib", .double((Double(memory.hwm) / 102.4).rounded() / 10)),
                    ("min_polls_per_s", .double((rates.min()! * 100).rounded() / 100)),
                    ("mean_polls_per_s", .double((rates.reduce(0, +) / Double(devices) * 100).rounded() / 100)),
                    ("events_per_s", .double((Double(events) / window.seconds).rounded())),
                    ("context_switches_per_s", .double((Double(switches1 - switches0) / window.seconds).rounded())),
                ])
        }
    }

    /// Device `dN` on its own server: registers `t0`..`t499`. Machine `mN`: state on `t0`, good
    /// parts on `t1`, scrap on `t2`, a material totalizer on `t3`, a temperature on `t4`.
    static func config(plcs: [Int], sink: Int, status: Int, data: String) -> String {
        let tags = (0..<registers).map { "      - { name: t\($0), area: holding, address: \($0), type: uint16 }" }
            .joined(separator: "\n")
        let devices = plcs.enumerated().map { d, port in
            """
              - name: d\(d)
                modbus: { tcp: { host: 127.0.0.1, port: \(port) } }
                poll_interval: 100ms
                tags:
            \(tags)
            """
        }
        let machines = (0..<plcs.count).map { d in
            """
              - name: m\(d)
                state: { tag: d\(d).t0, map: { 0: stopped, 1: running }, downtime: [stopped] }
                counters:
                  - { tag: d\(d).t1, event: production.completed }
                  - { tag: d\(d).t2, event: production.scrapped }
                materials: [ { tag: d\(d).t3, material: PA66-GF30, unit: kg } ]
                quality: [ { name: melt, tag: d\(d).t4, low: 230, high: 260, hysteresis: 2, min_duration: 1s, severity: major } ]
            """
        }
        return """
            version: 1
            agent: { id: bench, site: s, line: l, data_dir: \(data), http: { listen: "127.0.0.1:\(status)" } }
            devices:
            \(devices.joined(separator: "\n"))
            machines:
            \(machines.joined(separator: "\n"))
            sinks:
              - name: mw
                http: { url: "http://127.0.0.1:\(sink)/v1/events" }
            outbox: { sync: full }
            """
    }

    /// Poll cycles per device so far, from the agent's `/metrics`.
    static func polls(port: Int) async throws -> [String: Int] {
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let text: String
        do {
            let response = try await client.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
            text = String(buffer: try await response.body.collect(upTo: 16 << 20))
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
        var counts: [String: Int] = [:]
        let prefix = "edge_modbus_poll_duration_seconds_count{device=\""
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            let rest = line.dropFirst(prefix.count)
            guard let quote = rest.firstIndex(of: "\""), let value = Double(rest.split(separator: " ").last ?? "")
            else { continue }
            counts[String(rest[..<quote])] = Int(value)
        }
        guard counts.count == devices else { throw BenchError("no poll counts for every device in /metrics") }
        return counts
    }

    /// Moves every register of every server every 100 ms: the state flips every 10 s (devices
    /// out of step), a good part a second, a scrap part every 10 s, a kg of material every 2 s,
    /// the temperature inside its limits but for 2 s in every 30 s; the other 495 count.
    final class LineSimulation: Sendable {
        private let running = Atomic<Bool>(true)

        init(_ plcs: [ModbusServer]) {
            let thread = Thread { [self] in
                var tick = 0
                while self.running.load(ordering: .relaxed) {
                    for (d, plc) in plcs.enumerated() {
                        var values = (0..<registers).map { UInt16(truncatingIfNeeded: tick + $0) }
                        let t = tick + d * 7
                        values[0] = UInt16(t / 100 % 2)
                        values[1] = UInt16(truncatingIfNeeded: t / 10)
                        values[2] = UInt16(truncatingIfNeeded: t / 100)
                        values[3] = UInt16(truncatingIfNeeded: t / 20)
                        values[4] = t % 300 < 20 ? 270 : UInt16(240 + t % 10)
                        plc.write(holding: 0, values)
                    }
                    tick += 1
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            thread.start()
        }

        func stop() { running.store(false, ordering: .relaxed) }
    }
}
