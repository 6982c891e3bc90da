import AsyncHTTPClient
import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The promise under stress, through the built binary: a full outbox during a long outage, a
    /// SIGTERM while paused, a second agent on the same data, devices without rules.
    @Suite struct ReliabilityTests {
        static let machines = 8
        static let rate = 40.0  // parts per second per machine
        static let counting = 30.0  // seconds

        /// Eight presses: idle 3 s (the agent takes its baselines), counting 30 s, then idle.
        static var scenario: String {
            "machines:\n"
                + (0..<machines).map { m in
                    """
                      - name: press-\(m)
                        registers: { state: \(m * 10), counter: \(m * 10 + 2) }
                        counter_start: \(65000 + m * 40)
                        repeat: false
                        phases:
                          - { state: 2, for: 3s }
                          - { state: 1, for: \(Int(counting))s, rate: \(rate) }
                          - { state: 2, for: 3600s }

                    """
                }.joined()
        }

        static func config(dir: TemporaryDirectory, plc: Int, receiver: Int, status: Int) -> String {
            let tags = (0..<machines).map { m in
                """
                      - { name: state\(m), area: holding, address: \(m * 10), type: uint16, publish: on_change }
                      - { name: count\(m), area: holding, address: \(m * 10 + 2), type: uint16 }
                """
            }
            let presses = (0..<machines).map { m in
                """
                  - name: press-\(m)
                    state: { tag: plc.state\(m), map: { 1: running, 2: idle } }
                    counters: [ { tag: plc.count\(m), event: production.completed } ]
                """
            }
            return """
                version: 1
                agent: { id: line-full, site: plant-t, line: line-1, data_dir: \(dir.path)/data, http: { listen: "127.0.0.1:\(status)" } }
                devices:
                  - name: plc
                    modbus: { tcp: { host: 127.0.0.1, port: \(plc) }, timeout: 500ms }
                    poll_interval: 100ms
                    tags:
                \(tags.joined(separator: "\n"))
                machines:
                \(presses.joined(separator: "\n"))
                sinks:
                  - name: receiver
                    http: { url: "http://127.0.0.1:\(receiver)/v1/events", timeout: 2s }
                    retry: { initial: 100ms, max: 2s }
                outbox: { max_size: 1MiB }
                """
        }

        func get(_ port: Int, _ path: String) async -> (status: Int, body: String)? {
            guard
                let response = try? await HTTPClient.shared.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(5)),
                let body = try? await response.body.collect(upTo: 1 << 20)
            else { return nil }
            return (Int(response.status.code), String(buffer: body))
        }

        /// The sink comes back while the paused agent keeps running (`false`), or after a SIGTERM
        /// while full and a restart (`true`): either way every part is counted exactly once.
        @Test(arguments: [false, true])
        func aFullOutboxPausesAndCountsEveryPartOnceTheSinkIsBack(sigtermWhilePaused: Bool) async throws {
            let dir = TemporaryDirectory()
            let simulator = try ChildProcess(
                Paths.edgeAgent,
                ["simulate", "--listen", "127.0.0.1:0", "--scenario", dir.write("line.yaml", Self.scenario)],
                directory: dir, name: "simulator")
            #expect(await eventually(timeout: .seconds(10)) { simulator.stdout.contains("listening on") })
            let lineStart = ContinuousClock.now
            let plc = try #require(
                Int(simulator.stdout.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
            let receiverPort = freePort(), statusPort = freePort()
            let configPath = dir.write(
                "agent.yaml", Self.config(dir: dir, plc: plc, receiver: receiverPort, status: statusPort))
            var agent = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", configPath], directory: dir, name: "agent-1")

            // The receiver is down: the outbox fills with production events; the few others (state
            // changes, their tag.changed) are dropped to make room, and that is not enough: appends
            // are refused and acquisition pauses.
            let paused = await eventually(timeout: .seconds(40), every: .milliseconds(200)) {
                await get(statusPort, "/readyz")?.body.contains("outbox full of undelivered critical events") == true
            }
            #expect(paused, "the 1 MiB outbox should fill while the receiver is down: \(agent.stderr.suffix(500))")

            if sigtermWhilePaused {
                // SIGTERM while full and the sink down: a clean stop within 10 s.
                let stopping = ContinuousClock.now
                agent.signal(SIGTERM)
                #expect(await agent.wait(timeout: .seconds(15)) == 0)
                #expect(ContinuousClock.now - stopping < .seconds(10), "SPEC 6: out within 10 s")
                agent = try ChildProcess(
                    Paths.edgeAgent, ["run", "--config", configPath], directory: dir, name: "agent-2")
                #expect(
                    await eventually(timeout: .seconds(20)) {
                        await get(statusPort, "/readyz")?.body.contains("outbox full of undelivered critical events")
                            == true
                    }, "still full after the restart")
            }
            // The receiver comes back after the line stopped counting, while the agent keeps running.
            try await Task.sleep(until: lineStart + .seconds(Int64(Self.counting) + 6))
            let receiver = try ChildProcess(
                Paths.edgeAgent, ["receive", "--listen", "127.0.0.1:\(receiverPort)", "--db", dir.file("received.db")],
                directory: dir, name: "receiver")
            var events: [[String: Any]] = []
            func parts(_ m: Int) -> Int {
                events.filter {
                    $0["type"] as? String == "production.completed" && $0["subject"] as? String == "press-\(m)"
                }
                .reduce(0) { $0 + (($1["data"] as! [String: Any])["quantity"] as! Int) }
            }
            let expected = Int(Self.rate * Self.counting)
            let complete = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
                events = receiver.stdout.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                return (0..<Self.machines).allSatisfy { parts($0) >= expected }
            }
            #expect(
                await eventually(timeout: .seconds(10)) { await get(statusPort, "/readyz")?.status == 200 },
                "ready again once drained")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            await simulator.stop()
            await receiver.stop()

            #expect(complete, "parts per machine: \((0..<Self.machines).map(parts)) of \(expected)")
            #expect(
                (0..<Self.machines).map(parts) == Array(repeating: expected, count: Self.machines),
                "every part counted exactly once through the pause, the SIGTERM and the drain")
            let sequences = events.map { Int($0["sequence"] as! String)! }.sorted()
            let dropped = events.filter { $0["type"] as? String == "outbox.events.dropped" }.map {
                $0["data"] as! [String: Any]
            }
            #expect(!dropped.isEmpty, "tag.changed events were dropped to make room, and said so")
            let droppedCount = dropped.reduce(0) { $0 + ($1["count"] as! Int) }
            let droppedRanges = dropped.map { ($0["first_sequence"] as! Int)...($0["last_sequence"] as! Int) }
            let received = Set(sequences)
            #expect(received.count == sequences.count, "a sequence given twice")
            let missing = (1...(sequences.last ?? 1)).filter { !received.contains($0) }
            #expect(
                missing.allSatisfy { seq in droppedRanges.contains { $0.contains(seq) } },
                "every sequence 1...N is received or inside a drop notice's range")
            #expect(missing.count <= droppedCount, "\(missing.count) sequences missing, \(droppedCount) dropped")
            #expect(!agent.stderr.contains("UNIQUE"), "no sequence reuse")
        }

        @Test func aSecondAgentOnTheSameDataRefusesToStartAndTheCLIStillWorks() async throws {
            let dir = TemporaryDirectory()
            let agent = AgentHarness(sinkURL: "http://127.0.0.1:\(freePort())/v1/events", directory: dir)
            try agent.start(events: 100)
            #expect(await eventually { (try? await agent.status().sinks["mw"]?.pending) == 101 })
            let second = try await agent.command(["run"])
            #expect(second.status == 1)
            #expect(
                second.stderr.contains(
                    "another edge-agent (pid \(agent.child!.process.processIdentifier)) is running on"),
                "\(second.stderr)")
            let status = try await agent.command(["outbox", "status", "--json"])
            #expect(status.status == 0, "outbox status works beside a running agent")
            #expect(await agent.stop() == 0)
            #expect(try await agent.status().sinks["mw"]?.pending == 101, "the refused agent appended nothing")
            try agent.start(events: 100)  // the lock went with the process
            #expect(await eventually { agent.child?.stderr.contains("Agent running.") == true })
            #expect(await agent.stop() == 0)
        }

        /// What systemd and the tests do: SIGTERM as soon as the agent says it runs. The stop is
        /// graceful every time (exit 0, the outbox closed), never the signal's default action.
        @Test func aStopSentTheMomentTheAgentSaysItRunsIsGraceful() async throws {
            let dir = TemporaryDirectory()
            let agent = AgentHarness(sinkURL: "http://127.0.0.1:\(freePort())/v1/events", directory: dir)
            for run in 1...8 {
                try agent.start(events: 10)
                #expect(
                    await eventually(every: .milliseconds(1)) { agent.child?.stderr.contains("Agent running.") == true }
                )
                #expect(await agent.stop() == 0, "run \(run): \(agent.child?.stderr ?? "")")
                #expect(agent.child?.stderr.contains("Agent stopped.") == true, "run \(run)")
            }
            #expect(try await agent.command(["outbox", "status"]).status == 0, "the outbox opens after every stop")
        }

        /// One device with one register and no rule, polled every `interval`: the agent's config
        /// and the PLC behind it, which answers `delay` seconds late.
        static func meterWithoutRules(
            _ dir: TemporaryDirectory, interval: String, delay: Double = 0, timeout: String = "300ms"
        ) async throws -> (ModbusTestServer, config: String) {
            let plc = try await ModbusTestServer(
                directory: dir, tags: #"[{"area": "holding", "address": 0, "type": "uint16", "value": 7}]"#,
                delay: delay)
            let config = dir.write(
                "agent.yaml",
                """
                version: 1
                agent: { id: bare, site: s, line: l, data_dir: \(dir.path)/data, http: { listen: "off" } }
                devices:
                  - name: meter
                    modbus: { tcp: { host: 127.0.0.1, port: \(plc.port) }, timeout: \(timeout) }
                    poll_interval: \(interval)
                    tags: [ { name: v, area: holding, address: 0, type: uint16 } ]
                sinks: [ { name: mw, http: { url: "http://127.0.0.1:\(freePort())/e" } } ]
                """)
            return (plc, config)
        }

        /// The device's connection changes in the outbox, in order: true for connected.
        static func connectionChanges(_ dir: TemporaryDirectory) -> [Bool] {
            guard let db = try? SQLiteConnection(path: dir.path + "/data/outbox.db", readOnly: true),
                let statement = try? db.prepare(
                    "SELECT body FROM events WHERE type = 'device.connection.changed' ORDER BY seq")
            else { return [] }
            var result: [Bool] = []
            while (try? statement.step()) == true {
                result.append(statement.text(0).contains(#""connected":true"#))
            }
            return result
        }

        /// A poller waits for its next read on its link's thread; a stop ends that wait at once
        /// rather than at the next read, ten minutes later here.
        @Test func aStopEndsAPollersWaitForItsNextRead() async throws {
            let dir = TemporaryDirectory()
            let (plc, config) = try await Self.meterWithoutRules(dir, interval: "600s")
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            #expect(
                await eventually(timeout: .seconds(10)) { Self.connectionChanges(dir) == [true] },
                "the first read is done: the poller waits for the next one")
            agent.signal(SIGTERM)
            #expect(await agent.wait(timeout: .seconds(60)) == 0, "\(agent.stderr)")
            #expect(agent.stderr.contains("Agent stopped."))
            await plc.stop()
        }

        /// A stop that arrives while a read is in hand lets it finish: that reading, the first here,
        /// which reports the device connected, reaches the outbox before the agent exits.
        @Test func aReadingInHandWhenTheAgentStopsReachesTheOutbox() async throws {
            let dir = TemporaryDirectory()
            let (plc, config) = try await Self.meterWithoutRules(dir, interval: "600s", delay: 2, timeout: "5s")
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            #expect(
                await eventually(timeout: .seconds(15)) {
                    agent.stderr.contains("Agent running.") && plc.delayedRequests > 0
                }, "the PLC holds the first read back")
            #expect(Self.connectionChanges(dir) == [], "it is not answered yet")
            agent.signal(SIGTERM)
            #expect(await agent.wait(timeout: .seconds(60)) == 0, "\(agent.stderr)")
            #expect(Self.connectionChanges(dir) == [true], "\(agent.stderr)")
            await plc.stop()
        }

        @Test func devicesWithoutRulesStillReportTheirConnection() async throws {
            let dir = TemporaryDirectory()
            let (plc, config) = try await Self.meterWithoutRules(dir, interval: "100ms")
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            #expect(
                await eventually(timeout: .seconds(10)) { Self.connectionChanges(dir) == [true] },
                "the first outcome is reported without any rule")
            await plc.stop()
            #expect(
                await eventually(timeout: .seconds(10)) { Self.connectionChanges(dir) == [true, false] },
                "and every change after it: the poller is not stuck on the bus")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
        }
    }
}
