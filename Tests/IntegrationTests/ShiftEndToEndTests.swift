import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
/// The built binary three times over: the simulator plays a scripted shift, the agent polls it
/// and is SIGKILLed three times, the reference receiver collects. What arrives matches the script.
@Suite struct ShiftEndToEndTests {
    static let scenario = """
        machines:
          - name: press-1
            registers: { state: 100, reason: 101, counter: 102, work_order: 120 }
            counter_start: 63000
            work_order: WO-77
            repeat: false
            phases:
              - { state: 2, for: 3s }                        # idle: the agent takes its baseline
              - { state: 1, for: 8s, rate: 250 }             # 2,000 parts
              - { state: 0, for: 4s, reason: 12 }            # a micro-stop (min_downtime is 6s)
              - { state: 1, for: 4s, rate: 250 }             # 1,000 parts; the counter rolls over
              - { state: 3, for: 8s, reason: 31 }            # a fault with its reason
              - { state: 4, for: 4s, reason: 31 }            # setup
              - { state: 1, for: 8s, rate: 250 }             # 2,000 parts
              - { state: 2, for: 600s }
        """

    static func config(dir: TemporaryDirectory, plc: Int, receiver: Int) -> String {
        """
        version: 1
        agent: { id: line-e2e, site: plant-t, line: line-1, data_dir: \(dir.path)/data, http: { listen: "off" } }
        devices:
          - name: press-1
            modbus: { tcp: { host: 127.0.0.1, port: \(plc) }, timeout: 500ms }
            poll_interval: 200ms
            tags:
              - { name: state, area: holding, address: 100, type: uint16 }
              - { name: reason, area: holding, address: 101, type: uint16 }
              - { name: good_count, area: holding, address: 102, type: uint16 }
              - { name: order, area: holding, address: 120, type: string, length: 8 }
        machines:
          - name: press-1
            state:
              tag: press-1.state
              map: { 0: stopped, 1: running, 2: idle, 3: fault, 4: setup }
              downtime: [stopped, fault]
              reason_tag: press-1.reason
              min_downtime: 6s
            counters:
              - { tag: press-1.good_count, event: production.completed, unit: pcs, work_order_tag: press-1.order }
        sinks:
          - name: receiver
            http: { url: "http://127.0.0.1:\(receiver)/v1/events" }
            batch: { max_events: 200, linger: 20ms }
            retry: { initial: 50ms, max: 500ms }
        """
    }

    @Test func aScriptedShiftArrivesExactlyThroughThreeKills() async throws {
        let dir = TemporaryDirectory()
        let receiverPort = freePort()
        let receiver = try ChildProcess(Paths.edgeAgent, ["receive", "--listen", "127.0.0.1:\(receiverPort)", "--db", dir.file("received.db")],
                                        directory: dir, name: "receiver")
        let scenario = dir.write("shift.yaml", Self.scenario)
        let simulator = try ChildProcess(Paths.edgeAgent, ["simulate", "--listen", "127.0.0.1:0", "--scenario", scenario],
                                         directory: dir, name: "simulator")
        #expect(await eventually(timeout: .seconds(10)) { simulator.stdout.contains("listening on") })
        let shiftStart = ContinuousClock.now
        let plcPort = try #require(Int(simulator.stdout.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        let configPath = dir.write("agent.yaml", Self.config(dir: dir, plc: plcPort, receiver: receiverPort))

        var runs = 0
        func startAgent() throws -> ChildProcess {
            runs += 1
            return try ChildProcess(Paths.edgeAgent, ["run", "--config", configPath], directory: dir, name: "agent-\(runs)")
        }
        var agent = try startAgent()
        for killAt in [6.0, 23.0, 35.0] {  // mid-run, mid-fault, mid-run: no state change while the agent is down
            try await Task.sleep(until: shiftStart + .milliseconds(Int64(killAt * 1000)))
            agent.signal(SIGKILL)
            await agent.wait()
            agent = try startAgent()
        }
        try await Task.sleep(until: shiftStart + .seconds(42))

        var events: [[String: Any]] = []
        let complete = await eventually(timeout: .seconds(30)) {
            events = receiver.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let parts = events.filter { $0["type"] as? String == "production.completed" }
                .reduce(0) { $0 + (($1["data"] as! [String: Any])["quantity"] as! Int) }
            return parts >= 5000 && events.contains { $0["type"] as? String == "machine.downtime.ended" }
        }
        agent.signal(SIGTERM)
        #expect(await agent.wait() == 0)
        await simulator.stop()
        await receiver.stop()
        #expect(complete, "the receiver did not get the whole shift")

        events.sort { ($0["sequence"] as! String) < ($1["sequence"] as! String) }
        let sequences = events.map { Int($0["sequence"] as! String)! }
        #expect(sequences == Array(1...events.count), "no gap in sequence across three kills")
        func of(_ type: String) -> [[String: Any]] { events.filter { $0["type"] as? String == type }.map { $0["data"] as! [String: Any] } }

        #expect(of("machine.state.changed").map { $0["state"] as! String }
            == ["idle", "running", "stopped", "running", "fault", "setup", "running", "idle"])
        let parts = of("production.completed")
        #expect(parts.reduce(0) { $0 + ($1["quantity"] as! Int) } == 5000, "quantities sum to the parts made, rollover and kills included")
        #expect(parts.allSatisfy { $0["work_order"] as? String == "WO-77" })
        let started = of("machine.downtime.started"), ended = of("machine.downtime.ended")
        #expect(started.count == 1 && ended.count == 1, "one downtime: the fault; the 4 s stop was a micro-stop")
        #expect(started.first?["state"] as? String == "fault" && started.first?["reason_code"] as? Int == 31)
        #expect(ended.first?["state"] as? String == "fault" && ended.first?["reason_code"] as? Int == 31)
        let duration = ended.first?["duration_ms"] as? Int ?? 0
        #expect(abs(duration - 8000) <= 200, "the fault lasted 8 s; measured \(duration) ms with a 200 ms poll interval")
        #expect(started.first?["downtime_id"] as? String == ended.first?["downtime_id"] as? String)
    }
}
}
