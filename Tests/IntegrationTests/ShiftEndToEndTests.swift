import EdgeAgent
import EdgeAgentTesting
import EdgeAgentTools
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

        static let stopsAndCounts = """
                  min_downtime: 6s
                counters:
                  - { tag: press-1.good_count, event: production.completed, unit: pcs, work_order_tag: press-1.order }
            """

        /// `tags`: more tags of press-1; `rules`: the machine's rules after its state map.
        static func config(
            dir: TemporaryDirectory, plc: Int, receiver: Int, tags: String = "", rules: String = stopsAndCounts
        ) -> String {
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
            \(tags)
            machines:
              - name: press-1
                state:
                  tag: press-1.state
                  map: { 0: stopped, 1: running, 2: idle, 3: fault, 4: setup }
                  downtime: [stopped, fault]
                  reason_tag: press-1.reason
            \(rules)
            sinks:
              - name: receiver
                http: { url: "http://127.0.0.1:\(receiver)/v1/events" }
                batch: { max_events: 200, linger: 20ms }
                retry: { initial: 50ms, max: 500ms }
            """
        }

        /// Plays `scenario` on the simulator with the reference receiver, runs the agent on the
        /// config `makeConfig(plcPort, receiverPort)` makes, SIGKILLs and restarts it at each of
        /// `killsAt` (seconds into the shift), waits until `until`, then until `done` holds for what
        /// the receiver printed (at most 30 s more), and stops everything. Returns the events, in
        /// sequence order, and whether `done` held.
        func playShift(
            _ scenario: String, killsAt: [Double], until: Double, makeConfig: (TemporaryDirectory, Int, Int) -> String,
            done: @escaping ([[String: Any]]) -> Bool
        ) async throws -> (events: [[String: Any]], complete: Bool) {
            let dir = TemporaryDirectory()
            let receiverPort = freePort()
            let receiver = try ChildProcess(
                Paths.edgeAgent, ["receive", "--listen", "127.0.0.1:\(receiverPort)", "--db", dir.file("received.db")],
                directory: dir, name: "receiver")
            let simulator = try ChildProcess(
                Paths.edgeAgent,
                ["simulate", "--listen", "127.0.0.1:0", "--scenario", dir.write("shift.yaml", scenario)],
                directory: dir, name: "simulator")
            #expect(await eventually(timeout: .seconds(10)) { simulator.stdout.contains("listening on") })
            let shiftStart = ContinuousClock.now
            let plcPort = try #require(
                Int(simulator.stdout.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
            let configPath = dir.write("agent.yaml", makeConfig(dir, plcPort, receiverPort))

            var runs = 0
            func startAgent() throws -> ChildProcess {
                runs += 1
                return try ChildProcess(
                    Paths.edgeAgent, ["run", "--config", configPath], directory: dir, name: "agent-\(runs)")
            }
            var agent = try startAgent()
            for killAt in killsAt {
                try await Task.sleep(until: shiftStart + .milliseconds(Int64(killAt * 1000)))
                agent.signal(SIGKILL)
                await agent.wait()
                agent = try startAgent()
            }
            try await Task.sleep(until: shiftStart + .milliseconds(Int64(until * 1000)))

            var events: [[String: Any]] = []
            let complete = await eventually(timeout: .seconds(30)) {
                events = receiver.stdout.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                return done(events)
            }
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            await simulator.stop()
            await receiver.stop()
            events.sort { ($0["sequence"] as! String) < ($1["sequence"] as! String) }
            return (events, complete)
        }

        @Test func aScriptedShiftArrivesExactlyThroughThreeKills() async throws {
            // Kills mid-run, mid-fault, mid-run: no state change while the agent is down.
            let (events, complete) = try await playShift(
                Self.scenario, killsAt: [6, 23, 35], until: 42,
                makeConfig: { Self.config(dir: $0, plc: $1, receiver: $2) }
            ) { events in
                let parts = events.filter { $0["type"] as? String == "production.completed" }
                    .reduce(0) { $0 + (($1["data"] as! [String: Any])["quantity"] as! Int) }
                return parts >= 5000 && events.contains { $0["type"] as? String == "machine.downtime.ended" }
            }
            #expect(complete, "the receiver did not get the whole shift")
            let sequences = events.map { Int($0["sequence"] as! String)! }
            #expect(sequences == Array(1...events.count), "no gap in sequence across three kills")
            func of(_ type: String) -> [[String: Any]] {
                events.filter { $0["type"] as? String == type }.map { $0["data"] as! [String: Any] }
            }

            #expect(
                of("machine.state.changed").map { $0["state"] as! String }
                    == ["idle", "running", "stopped", "running", "fault", "setup", "running", "idle"])
            let parts = of("production.completed")
            #expect(
                parts.reduce(0) { $0 + ($1["quantity"] as! Int) } == 5000,
                "quantities sum to the parts made, rollover and kills included")
            #expect(parts.allSatisfy { $0["work_order"] as? String == "WO-77" })
            let started = of("machine.downtime.started"), ended = of("machine.downtime.ended")
            #expect(started.count == 1 && ended.count == 1, "one downtime: the fault; the 4 s stop was a micro-stop")
            #expect(started.first?["state"] as? String == "fault" && started.first?["reason_code"] as? Int == 31)
            #expect(ended.first?["state"] as? String == "fault" && ended.first?["reason_code"] as? Int == 31)
            let duration = ended.first?["duration_ms"] as? Int ?? 0
            #expect(
                abs(duration - 8000) <= 200, "the fault lasted 8 s; measured \(duration) ms with a 200 ms poll interval"
            )
            #expect(started.first?["downtime_id"] as? String == ended.first?["downtime_id"] as? String)
        }

        /// Two orders with resin consumption, a fault inside the first, a melt excursion inside the
        /// second; order changes fall in a setup and an idle phase (what the line does while the
        /// agent is down is only attributable when no order changes then).
        static let orders = """
            machines:
              - name: press-1
                registers: { state: 100, reason: 101, counter: 102, work_order: 120, resin: 130, melt: 150 }
                counter_start: 64000
                work_orders: [WO-881, WO-882, ""]
                order_length: 16s
                resin_per_part: 0.5
                melt: { nominal: 245, peak: 270, at: 20s, for: 6s }
                repeat: false
                phases:
                  - { state: 2, for: 3s }                        # idle: the agent takes its baselines
                  - { state: 1, for: 6s, rate: 250 }             # 1,500 parts; the counter rolls over
                  - { state: 3, for: 4s, reason: 31 }            # a fault: a downtime of WO-881
                  - { state: 1, for: 2s, rate: 250 }             # 500 parts
                  - { state: 4, for: 3s }                        # setup: WO-882 from 16 s
                  - { state: 1, for: 12s, rate: 250 }            # 3,000 parts; melt above 260 from ~20.6 s to ~25.5 s
                  - { state: 2, for: 600s }                      # idle: no order from 32 s
            """

        @Test func twoOrdersThroughTwoKillsHaveTheSimulatorsTotals() async throws {
            func of(_ type: String, in events: [[String: Any]]) -> [[String: Any]] {
                events.filter { $0["type"] as? String == type }.map { $0["data"] as! [String: Any] }
            }
            // Kills mid-run in WO-881, and in WO-882 with the excursion under way.
            let (events, complete) = try await playShift(
                Self.orders, killsAt: [6, 22], until: 34,
                makeConfig: { dir, plc, receiver in
                    Self.config(
                        dir: dir, plc: plc, receiver: receiver,
                        tags: """
                                  - { name: resin_kg, area: holding, address: 130, type: uint32 }
                                  - { name: melt_temp, area: holding, address: 150, type: float32 }
                            """,
                        rules: """
                                  min_downtime: 2s
                                counters:
                                  - { tag: press-1.good_count, event: production.completed, unit: pcs }
                                work_order: { tag: press-1.order }
                                materials:
                                  - { tag: press-1.resin_kg, material: PA66-GF30, unit: kg }
                                quality:
                                  - { name: melt_temp, tag: press-1.melt_temp, low: 230, high: 260, hysteresis: 2, min_duration: 2s, severity: major }
                            """)
                }
            ) { events in
                of("work_order.completed", in: events).count == 2
                    && of("quality.exception.cleared", in: events).count == 1
            }
            func of(_ type: String) -> [[String: Any]] { of(type, in: events) }
            #expect(complete, "the receiver did not get both orders and the excursion")
            #expect(
                events.map { Int($0["sequence"] as! String)! } == Array(1...events.count),
                "no gap in sequence across two kills")

            let line = try LineSimulator(SimulatorScenario.parse(Self.orders))
            let truth = line.truth(
                machine: 0, elapsed: 34_000, downtimeStates: [0, 3], minDowntime: 2_000, high: 260, minDuration: 2_000)
            #expect(truth.completedOrders.map(\.id) == ["WO-881", "WO-882"])
            let completed = of("work_order.completed")
            #expect(completed.map { $0["work_order"] as? String } == ["WO-881", "WO-882"])
            for (order, real) in zip(completed, truth.completedOrders) {
                let id = real.id
                let good = order["good"] as? Int, scrap = order["scrap"] as? Int
                let materials = order["materials"] as? [String: [String: Any]]
                #expect(
                    good == Int(real.parts) && scrap == 0, "\(id): \(good ?? -1) good, the simulator made \(real.parts)"
                )
                #expect(
                    materials?["PA66-GF30"]?["quantity"] as? Int == Int(real.resin)
                        && materials?["PA66-GF30"]?["unit"] as? String == "kg",
                    "\(id): \(materials ?? [:]), the simulator used \(real.resin) kg")
                // What a consumer adds up from the events that carried the order.
                let made = of("production.completed").filter { $0["work_order"] as? String == id }.reduce(0) {
                    $0 + ($1["quantity"] as! Int)
                }
                let used = of("material.consumed").filter { $0["work_order"] as? String == id }.reduce(0) {
                    $0 + ($1["quantity"] as! Int)
                }
                #expect(made == good && used == Int(real.resin), "\(id): the events' sums are the totals")
            }
            let downtime = completed.first?["downtime_ms"] as? Int ?? -1
            #expect(
                abs(downtime - 4000) <= 400, "WO-881 held the 4 s fault: \(downtime) ms with a 200 ms poll interval")
            #expect(completed.last?["downtime_ms"] as? Int == 0)
            let raised = of("quality.exception.raised"), cleared = of("quality.exception.cleared")
            #expect(raised.count == 1 && cleared.count == 1, "one excursion, raised and cleared once across the kill")
            #expect(raised.first?["exception_id"] as? String == cleared.first?["exception_id"] as? String)
            #expect(
                cleared.first?["work_order"] as? String == "WO-882" && cleared.first?["extreme_value"] as? Double == 270
            )
            let lasted = cleared.first?["duration_ms"] as? Int ?? 0
            #expect(abs(lasted - 4900) <= 600, "above 260 from ~20.6 s, back to 258 at ~25.5 s: \(lasted) ms")
            #expect(of("work_order.started").map { $0["previous_work_order"] as? String } == [nil, "WO-881"])
        }
    }
}
