import AsyncHTTPClient
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The MQTT sink against a real mosquitto, read by a real subscriber (`mosquitto_sub`).
    @Suite struct MQTTDeliveryTests {
        static func sink(_ broker: MosquittoBroker, scheme: String = "mqtt", extra: String = "") -> String {
            """
              - name: broker
                mqtt: { url: "\(scheme)://127.0.0.1:\(broker.port)", client_id: edge-test\(extra) }
                batch: { max_events: 500, linger: 20ms }
                retry: { initial: 50ms, max: 1s }
            """
        }

        /// What the subscriber saw, checked as the middleware would: by id, with one content each.
        struct Seen {
            var byID: [String: String] = [:]
            var twoContents: [String] = []
            var qos: Set<Int> = []
            var topics: Set<String> = []

            init(_ messages: [MQTTSubscriber.Message]) {
                for message in messages where !message.topic.hasSuffix("/status") {
                    guard
                        let event = try? JSONSerialization.jsonObject(with: Data(message.payload.utf8))
                            as? [String: Any],
                        let id = event["id"] as? String
                    else { continue }
                    if let seen = byID[id], seen != message.payload { twoContents.append(id) }
                    byID[id] = message.payload
                    qos.insert(message.qos)
                    topics.insert(message.topic)
                }
            }
        }

        func status(_ broker: MosquittoBroker) async throws -> String {
            let result = try await runToEnd(
                "/usr/bin/mosquitto_sub",
                [
                    "-h", "127.0.0.1", "-p", String(broker.port), "-C", "1", "-W", "5",
                    "-t", "plants/plant-t/lines/line-1/agents/test-agent/status", "-F", "%r %p",
                ],
                directory: broker.directory)
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        @Test(arguments: ["3.1.1", "5"])
        func publishesEachEventAloneAsTheHTTPSinkSendsItAndKeepsAStatus(protocol version: String) async throws {
            let dir = TemporaryDirectory()
            let broker = try await MosquittoBroker(directory: dir)
            let subscriber = try await MQTTSubscriber(broker: broker, topic: "plants/#")
            let agent = AgentHarness(sinks: Self.sink(broker, extra: ", protocol: \"\(version)\""), directory: dir)
            try agent.start(events: 2000)
            var seen = Seen([])
            #expect(
                await eventually(timeout: .seconds(30)) {
                    seen = Seen(subscriber.messages)
                    return seen.byID.count == 2001
                }, "subscriber has \(seen.byID.count) of 2001")
            #expect(
                try await status(broker).hasPrefix(#"1 {"online":true,"agent":"test-agent","version":""#),
                "retained online status")
            let outbox = try agent.outboxEvents()
            #expect(
                outbox.allSatisfy { seen.byID[$0.id] == $0.body },
                "each payload is the stored CloudEvent, byte for byte")
            #expect(seen.qos == [1] && seen.twoContents.isEmpty)
            #expect(
                seen.topics == [
                    "plants/plant-t/lines/line-1/tag.changed", "plants/plant-t/lines/line-1/outbox.created",
                ])
            // Settled once the broker's acknowledgements are committed (after the subscriber has them).
            #expect(await eventually { (try? await agent.status().sinks["broker"]?.pending) == 0 })
            #expect(await agent.stop() == 0)
            #expect(
                try await status(broker)
                    == #"1 {"online":false,"agent":"test-agent","version":"\#(EdgeAgentVersion.current)"}"#,
                "a clean stop says offline itself")
            await subscriber.stop()
            await broker.stop()
        }

        /// The agent's promise ends at the broker's PUBACK. mosquitto keeps what it acknowledged in
        /// memory and saves it every `autosave_interval` (1 s here), so a SIGKILL may lose the few
        /// messages it acknowledged in its last second and had not yet written to the subscriber:
        /// that is the broker's loss, and the only one allowed. Everything acknowledged earlier, and
        /// everything the agent still held when the broker died, must arrive.
        @Test func theBrokerKilledMidDrainLosesNothing() async throws {
            let dir = TemporaryDirectory()
            let broker = try await MosquittoBroker(directory: dir, options: .init(persistence: true))
            let subscriber = try await MQTTSubscriber(broker: broker, topic: "plants/plant-t/lines/line-1/tag.changed")
            try await Task.sleep(for: .milliseconds(1500))  // its session is saved (autosave every second)
            let agent = AgentHarness(sinks: Self.sink(broker), directory: dir)
            try agent.start(events: 20_000, rate: 5000)
            #expect(await eventually(timeout: .seconds(20)) { Seen(subscriber.messages).byID.count > 2000 })
            let savedBefore = try agent.sinkCursor("broker")  // acknowledged over a second before the kill
            try await Task.sleep(for: .milliseconds(1500))
            await broker.kill9()
            let acknowledged = try agent.sinkCursor("broker")
            try await Task.sleep(for: .seconds(2))
            try await broker.start()
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                    (try? await agent.status().sinks["broker"]?.pending) == 0
                }, "the agent delivers its whole backlog once the broker is back")
            try await Task.sleep(for: .seconds(1))  // the subscriber reads the last ones
            let seen = Seen(subscriber.messages)
            let missing = try agent.outboxEvents().filter { $0.body.contains("tag.changed") && seen.byID[$0.id] == nil }
            #expect(
                missing.allSatisfy { $0.sequence > savedBefore && $0.sequence <= acknowledged },
                "only what the broker acknowledged in its last unsaved second may be missing: \(missing.map(\.sequence)), saved up to \(savedBefore), acknowledged up to \(acknowledged)"
            )
            #expect(missing.count < 200, "the broker lost \(missing.count) acknowledged messages")
            #expect(seen.byID.count + missing.count == 20_000)
            #expect(seen.twoContents.isEmpty, "a repeat carries the same content")
            #expect(await agent.stop() == 0)
            await subscriber.stop()
            await broker.stop()
        }

        @Test func theAgentKilledMidDrainLosesNothingAndTheWillSaysOffline() async throws {
            let dir = TemporaryDirectory()
            let broker = try await MosquittoBroker(directory: dir)
            let subscriber = try await MQTTSubscriber(broker: broker, topic: "plants/plant-t/lines/line-1/tag.changed")
            let agent = AgentHarness(sinks: Self.sink(broker), directory: dir)
            try agent.start(events: 20_000, rate: 5000)
            #expect(await eventually(timeout: .seconds(20)) { Seen(subscriber.messages).byID.count > 2000 })
            await agent.kill9()
            #expect(
                await eventually(timeout: .seconds(60)) {
                    (try? await status(broker))?.contains(#""online":false"#) == true
                },
                "the broker publishes the will once the keepalive runs out")
            try agent.start(events: 20_000)
            var seen = Seen([])
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                    seen = Seen(subscriber.messages)
                    return seen.byID.count == 20_000
                }, "subscriber has \(seen.byID.count) of 20000 after the agent's crash")
            #expect(seen.twoContents.isEmpty)
            #expect(try await status(broker).contains(#""online":true"#))
            #expect(await agent.stop() == 0)
            await subscriber.stop()
            await broker.stop()
        }

        /// SPEC 6: a stop while the broker is frozen (SIGSTOP: connected, silent) ends the wait
        /// for its PUBACKs, exits 0 within 10 s, and leaves what was not acknowledged pending.
        @Test func aStopWhileTheBrokerIsFrozenExitsCleanlyAndLosesNothing() async throws {
            let dir = TemporaryDirectory()
            let broker = try await MosquittoBroker(directory: dir, options: .init(persistence: true))
            let subscriber = try await MQTTSubscriber(broker: broker, topic: "plants/plant-t/lines/line-1/tag.changed")
            try await Task.sleep(for: .milliseconds(1500))  // its session is saved (autosave every second)
            // A long PUBACK timeout: the stop comes while the sink still waits.
            let agent = AgentHarness(sinks: Self.sink(broker, extra: ", timeout: 60s"), directory: dir)
            try agent.start(events: 20_000, rate: 5000)
            #expect(await eventually(timeout: .seconds(20)) { Seen(subscriber.messages).byID.count > 2000 })
            broker.freeze()
            #expect(
                await eventually(timeout: .seconds(20)) {
                    (try? await agent.status().sinks["broker"]?.pending) ?? 0 > 0
                },
                "events wait for the frozen broker")
            let stopping = ContinuousClock.now
            let status = await agent.stop()
            let took = ContinuousClock.now - stopping
            #expect(
                status == 0,
                "exit status \(status.map(String.init) ?? "none"): \(agent.child?.stderr.suffix(1500) ?? "")")
            #expect(took < .seconds(10), "the stop took \(took)")
            #expect(
                agent.child?.stderr.contains("Sink is failing") == false,
                "a wait the stop ended is no failure of the sink")
            broker.thaw()
            try agent.start(events: 20_000)
            var seen = Seen([])
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                    seen = Seen(subscriber.messages)
                    return seen.byID.count == 20_000
                }, "subscriber has \(seen.byID.count) of 20000 after the stop")
            #expect(seen.twoContents.isEmpty)
            #expect(await agent.stop() == 0)
            await subscriber.stop()
            await broker.stop()
        }

        /// A slow link: a batch takes several PUBACK timeouts to be acknowledged. Each event is
        /// still published once (libmosquitto holds and resends it), a late PUBACK delivers it,
        /// and nothing piles up in the agent.
        @Test func aSlowLinkDeliversEveryEventWithoutCopiesOrGrowth() async throws {
            let dir = TemporaryDirectory()
            let broker = try await MosquittoBroker(directory: dir)
            let subscriber = try await MQTTSubscriber(broker: broker, topic: "plants/plant-t/lines/line-1/tag.changed")
            let link = try ThrottledProxy(upstream: broker.port, bytesPerSecond: 96 * 1024)
            defer { link.stop() }
            let agent = AgentHarness(
                sinks: """
                      - name: broker
                        mqtt: { url: "mqtt://127.0.0.1:\(link.port)", client_id: edge-test, timeout: 1s }
                        batch: { max_events: 500, linger: 20ms }
                        retry: { initial: 50ms, max: 1s }
                    """, directory: dir)
            let events = 3000
            try agent.start(events: events)
            func rss() -> Int {
                guard let pid = agent.child?.process.processIdentifier,
                    let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                    let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
                else { return 0 }
                return Int(line.split(separator: " ")[1]) ?? 0  // KiB
            }
            #expect(await eventually(timeout: .seconds(30)) { Seen(subscriber.messages).byID.count >= 400 })
            let early = rss()
            var seen = Seen([])
            #expect(
                await eventually(timeout: .seconds(120), every: .milliseconds(250)) {
                    seen = Seen(subscriber.messages)
                    return seen.byID.count == events
                }, "subscriber has \(seen.byID.count) of \(events)")
            #expect(
                agent.child?.stderr.contains(#"msg="Sink is failing; retrying with backoff." reason=timeout"#) == true,
                "PUBACK timeouts happened")
            #expect(await eventually { (try? await agent.status().sinks["broker"]?.pending) == 0 })
            let late = rss()
            try await Task.sleep(for: .seconds(1))  // the subscriber reads whatever copies are left
            var copies: [String: Int] = [:]
            for message in subscriber.messages {
                guard let start = message.payload.range(of: #""id":""#) else { continue }
                copies[String(message.payload[start.upperBound...].prefix(36)), default: 0] += 1
            }
            let most = copies.values.max() ?? 0
            let total = copies.values.reduce(0, +)
            #expect(most <= 2, "an event arrived \(most) times; \(total) messages for \(events) events")
            #expect(total <= events + events / 10, "\(total) messages for \(events) events")
            #expect(late - early < 16 * 1024, "RSS grew from \(early) KiB to \(late) KiB")
            #expect(await agent.stop() == 0)
            await subscriber.stop()
            await broker.stop()
        }

        @Test func verifiesTheBrokerCertificate() async throws {
            let dir = TemporaryDirectory()
            let certs = try await TLSDeliveryTests.makeCertificates(in: dir)
            let broker = try await MosquittoBroker(
                directory: dir, options: .init(tls: (certs.serverCert, certs.serverKey)))
            let subscriber = try await MQTTSubscriber(broker: broker, topic: "plants/#", extra: ["--cafile", certs.ca])
            let trusted = AgentHarness(
                sinks: Self.sink(broker, scheme: "mqtts", extra: ", tls: { ca_file: \(certs.ca) }"), directory: dir)
            try trusted.start(events: 100)
            #expect(await eventually(timeout: .seconds(20)) { Seen(subscriber.messages).byID.count == 101 })
            #expect(await trusted.stop() == 0)

            let other = TemporaryDirectory()
            let untrusted = AgentHarness(
                sinks: Self.sink(broker, scheme: "mqtts", extra: ", tls: { ca_file: \(certs.otherCA) }"),
                directory: other)
            try untrusted.start(events: 50)
            try await Task.sleep(for: .seconds(3))
            #expect(
                Seen(subscriber.messages).byID.count == 101,
                "nothing goes to a broker whose certificate another CA signed")
            #expect(try await untrusted.status().sinks["broker"]?.pending == 51, "and everything stays in the outbox")
            #expect(await untrusted.stop() == 0)
            await subscriber.stop()
            await broker.stop()
        }

        @Test func aWrongPasswordIsNotReadyAndNothingIsDeadLettered() async throws {
            let dir = TemporaryDirectory()
            let broker = try await MosquittoBroker(
                directory: dir, options: .init(users: ["edge": "right", "reader": "r"], persistence: true))
            let subscriber = try await MQTTSubscriber(
                broker: broker, topic: "plants/#", extra: ["-u", "reader", "-P", "r"])
            let port = freePort()
            let agent = AgentHarness(
                sinks: Self.sink(broker, extra: ", username: edge, password: wrong"), statusPort: port, directory: dir)
            try agent.start(events: 300)
            func readyz() async -> (Int, String)? {
                guard
                    let response = try? await HTTPClient.shared.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz"), timeout: .seconds(5)),
                    let body = try? await response.body.collect(upTo: 1 << 16)
                else { return nil }
                return (Int(response.status.code), String(buffer: body))
            }
            #expect(await eventually(timeout: .seconds(20)) { await readyz()?.0 == 503 })
            #expect(await readyz()?.1.contains("sink broker refuses the agent") == true)
            // The broker's operator fixes the account (and restarts it: the test runner's children
            // inherit a blocked SIGHUP); the agent delivers without a restart of its own.
            try MosquittoBroker.writePasswords(
                ["edge": "wrong", "reader": "r"], to: dir.file("mosquitto-\(broker.port).passwd"), directory: dir)
            await broker.stop()
            try await broker.start()
            #expect(
                await eventually(timeout: .seconds(30)) { Seen(subscriber.messages).byID.count == 301 },
                "\(broker.log.suffix(1500)) \(agent.child?.stderr.suffix(1500) ?? "")")
            #expect(await eventually(timeout: .seconds(10)) { await readyz()?.0 == 200 })
            let dead = try await agent.command(["outbox", "dead", "list"])
            #expect(dead.stdout.isEmpty, "nothing dead-lettered: \(dead.stdout)")
            #expect(await agent.stop() == 0)
            await subscriber.stop()
            await broker.stop()
        }

        @Test func anHTTPAndAnMQTTSinkSideBySideOneDownAndRetentionWaitsForBoth() async throws {
            let dir = TemporaryDirectory()
            let server = try await FaultServer(directory: dir)
            let broker = try await MosquittoBroker(directory: dir, options: .init(persistence: true))
            let subscriber = try await MQTTSubscriber(broker: broker, topic: "plants/plant-t/lines/line-1/tag.changed")
            try await Task.sleep(for: .milliseconds(1500))
            await broker.kill9()  // the broker is down from the start
            let agent = AgentHarness(
                sinks: """
                      - name: mw
                        http: { url: "\(server.url)" }
                        batch: { linger: 20ms }
                    \(Self.sink(broker))
                    """, outbox: "outbox: { retain_delivered: 1s }", directory: dir)
            try agent.start(events: 3000)
            #expect(
                await eventually(timeout: .seconds(30)) { ((try? await server.received().events.count) ?? 0) == 3001 },
                "the HTTP sink delivers while the broker is down")
            #expect(
                await eventually {
                    let status = try? await agent.status()
                    return status?.sinks["mw"]?.pending == 0 && status?.sinks["broker"]?.pending == 3001
                })
            try await Task.sleep(for: .seconds(3))  // past retain_delivered for the HTTP sink
            #expect(try agent.outboxEvents().count == 3001, "retention keeps what the broker has not had")
            try await broker.start()
            #expect(
                await eventually(timeout: .seconds(30)) { Seen(subscriber.messages).byID.count == 3000 },
                "and the broker gets its backlog")
            #expect(await eventually { (try? await agent.status().sinks["broker"]?.pending) == 0 })
            #expect(
                await eventually(timeout: .seconds(15)) { (try? agent.outboxEvents().count) == 0 },
                "once both sinks have had them, retention purges them")
            #expect(await agent.stop() == 0)
            await subscriber.stop()
            await broker.stop()
            await server.stop()
        }
    }
}
