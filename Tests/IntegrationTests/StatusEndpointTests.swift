import AsyncHTTPClient
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// `/`, `/healthz`, `/readyz` and `/metrics` of the running binary, read as Prometheus and an
    /// operator would.
    @Suite struct StatusEndpointTests {
        func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: body))
        }

        /// The value of one sample line of a Prometheus text exposition, if present.
        func metric(_ text: String, _ series: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap {
                Double($0.split(separator: " ").last!)
            }
        }

        @Test func readyzFailsWhileTheSinkRefusesTheAgentAndMetricsCount() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            try await server.control(#"{"token": "right"}"#)
            let port = freePort()
            let agent = AgentHarness(
                sinkURL: server.url, extraSink: ", bearer_token: wrong", statusPort: port, directory: dir)
            try agent.start(events: 300)
            #expect(await eventually { ((try? await get(port, "/readyz").status) ?? 0) == 503 })
            let notReady = try await get(port, "/readyz")
            #expect(notReady.body.contains("sink mw refuses the agent (HTTP 401)"), "\(notReady.body)")
            #expect(try await get(port, "/healthz").status == 200)
            // The sink may refuse the first batch before the last events are appended: all 301
            // (300 and outbox.created) end up pending, none delivered.
            #expect(
                await eventually {
                    metric((try? await get(port, "/metrics").body) ?? "", #"edge_outbox_pending_events{sink="mw"}"#)
                        == 301
                })
            let failing = try await get(port, "/metrics").body
            #expect((metric(failing, #"edge_sink_failures_total{sink="mw",reason="auth"}"#) ?? 0) >= 1)
            #expect((metric(failing, #"edge_sink_delivered_total{sink="mw"}"#) ?? 0) == 0)

            try await server.control(#"{"token": "wrong"}"#)
            #expect(await eventually { ((try? await get(port, "/readyz").status) ?? 0) == 200 })
            #expect(
                await eventually {
                    metric((try? await get(port, "/metrics").body) ?? "", #"edge_sink_delivered_total{sink="mw"}"#)
                        == 301
                })
            let metrics = try await get(port, "/metrics").body
            #expect(metric(metrics, #"edge_events_appended_total{type="tag.changed"}"#) == 300)
            #expect(metric(metrics, #"edge_events_appended_total{type="outbox.created"}"#) == 1)
            #expect(metric(metrics, #"edge_outbox_pending_events{sink="mw"}"#) == 0)
            #expect(metric(metrics, #"edge_delivery_latency_seconds_count{sink="mw"}"#) == 301)
            let page = try await get(port, "/")
            #expect(page.status == 200 && page.body.contains("ready: yes") && page.body.contains("sink mw: pending 0"))
            #expect(try await get(port, "/nope").status == 404)
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        @Test func modbusMetricsAndDevicesOnTheStatusPage() async throws {
            let dir = TemporaryDirectory()
            let simulator = try ChildProcess(
                Paths.edgeAgent, ["simulate", "--listen", "127.0.0.1:0"], directory: dir, name: "sim")
            #expect(await eventually(timeout: .seconds(10)) { simulator.stdout.contains("listening on") })
            let plc = try #require(
                simulator.stdout.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines))
            let port = freePort()
            let config = dir.write(
                "agent.yaml",
                """
                version: 1
                agent: { id: m1, site: s, line: l, data_dir: \(dir.path)/data, http: { listen: "127.0.0.1:\(port)" } }
                devices:
                  - name: press-1
                    modbus: { tcp: { host: 127.0.0.1, port: \(plc) } }
                    poll_interval: 100ms
                    tags: [ { name: state, area: holding, address: 100, type: uint16 }, { name: count, area: holding, address: 102, type: uint16 } ]
                machines:
                  - name: press-1
                    state: { tag: press-1.state, map: { 0: stopped, 1: running } }
                    counters: [ { tag: press-1.count, event: production.completed } ]
                """)
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            #expect(
                await eventually {
                    (metric(
                        (try? await get(port, "/metrics").body) ?? "",
                        #"edge_modbus_requests_total{device="press-1",result="ok"}"#) ?? 0) >= 5
                })
            let metrics = try await get(port, "/metrics").body
            #expect((metric(metrics, #"edge_modbus_poll_duration_seconds_count{device="press-1"}"#) ?? 0) >= 5)
            #expect(try await get(port, "/").body.contains("device press-1: connected"))
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            await simulator.stop()
        }

        @Test func aDamagedOutboxIsQuarantinedAndReadyzSaysSo() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            try FileManager.default.createDirectory(atPath: dir.path + "/data", withIntermediateDirectories: true)
            try Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(
                to: URL(fileURLWithPath: dir.path + "/data/outbox.db"))
            let port = freePort()
            let agent = AgentHarness(sinkURL: server.url, statusPort: port, directory: dir)
            try agent.start(events: 10)
            #expect(await eventually { ((try? await server.received().events.count) ?? 0) == 11 })
            let created = try #require(try await server.received().events.first)
            #expect(
                created["type"] as? String == "outbox.created"
                    && created["sequence"] as? String == "00000000000000000001")
            #expect((created["data"] as? [String: Any])?["reason"] as? String == "quarantined")
            let ready = try await get(port, "/readyz")
            #expect(
                ready.status == 200 && ready.body.contains("note: the outbox failed its integrity check"),
                "\(ready.body)")
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: dir.path + "/data/quarantine").contains {
                    $0.hasSuffix(".db")
                })
            #expect(await agent.stop() == 0)
            await server.stop()
        }

        /// Damage that still opens: the agent starts on it, its check beside the first readings
        /// finds the damage, and the agent restarts on a new outbox without exiting.
        @Test func damageFoundBesideTheFirstReadingsRestartsOnANewOutbox() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            let options = OutboxOptions(
                directory: dir.path + "/data", agentID: "test-agent",
                source: "/sites/plant-t/lines/line-1/agents/test-agent",
                sinks: [.init(name: "mw", filter: .all)])
            do {
                let (db, _) = try OutboxDatabase.openForWriting(options)
                let padding = String(repeating: "x", count: 200)
                try db.append(
                    (1...20_000).map {
                        Event(
                            type: .tagChanged, subject: "old", time: .now(),
                            data: ["n": .int(Int64($0)), "pad": .string(padding)])
                    })
            }
            let size = try #require(
                try FileManager.default.attributesOfItem(atPath: options.databasePath)[.size] as? Int)
            let handle = try #require(FileHandle(forUpdatingAtPath: options.databasePath))
            try handle.seek(toOffset: UInt64(size * 3 / 4 / 4096 * 4096))
            handle.write(Data(repeating: 0xA5, count: 64 * 1024))
            try handle.close()

            let port = freePort()
            let agent = AgentHarness(sinkURL: server.url, statusPort: port, directory: dir)
            try agent.start(events: 10)
            #expect(
                await eventually {
                    ((try? await server.received().events) ?? []).contains {
                        $0["type"] as? String == "outbox.created"
                            && ($0["data"] as? [String: Any])?["reason"] as? String == "quarantined"
                    }
                })
            let created = try #require(
                try await server.received().events.first { $0["type"] as? String == "outbox.created" })
            #expect(created["sequence"] as? String == "00000000000000000001")
            #expect(agent.child?.stderr.contains("failed its integrity check; restarting on a new one") == true)
            let ready = try await get(port, "/readyz")
            #expect(ready.status == 200 && ready.body.contains("note: the outbox failed its integrity check"))
            let quarantine = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/data/quarantine")
            #expect(quarantine.contains { $0.hasSuffix(".db") } && quarantine.contains { $0.hasSuffix(".reason.txt") })
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/outbox.damaged"))
            #expect(await agent.stop() == 0)
            await server.stop()
        }
    }
}
