import CMosquitto
import EdgeAgent
import EdgeAgentCore
import Foundation
import Logging
import Synchronization

/// `mqtt.drain`: events/s from a 100,000-event backlog to a local mosquitto at QoS 1 through the
/// forwarder and the MQTT sink (500-event batches, 100 in flight). Baseline: libmosquitto itself
/// publishing the same payloads at QoS 1 in a bare loop with the same in-flight window.
enum MQTTDrainBench {
    static let events = Int(ProcessInfo.processInfo.environment["EDGE_BENCH_MQTT_EVENTS"] ?? "") ?? 100_000
    static let window = 100

    static func run() async throws -> BenchResult {
        let dir = scratchDirectory("mqtt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try startBroker(dir)
        defer { kill(broker.process.processIdentifier, SIGKILL) }  // it may inherit a blocked SIGTERM

        let options = OutboxOptions(
            directory: dir + "/agent", agentID: "bench", source: "/sites/s/lines/l/agents/bench",
            sync: .full, maxSize: 1 << 34, sinks: [.init(name: "broker", filter: .all)])
        let writer = try await OutboxWriter(options: options)
        for start in stride(from: 0, to: events, by: 1000) {
            try await writer.append((start..<start + 1000).map(sampleEvent))
        }
        let stored = try OutboxDatabase.openExisting(options).claim(
            sink: "broker", filter: .all, maxEvents: events + 1, maxBytes: .max
        ).events

        var mqtt = SinkConfig.MQTT(url: "mqtt://127.0.0.1:\(broker.port)", clientID: "bench-agent")
        mqtt.maxInflight = window
        var sink = SinkConfig(name: "broker", kind: .mqtt(mqtt))
        sink.batch = .init(maxEvents: 500, maxBytes: 4 << 20, linger: .zero)
        let agent = AgentConfig.Agent(id: "bench", site: "s", line: "l", dataDir: dir, httpListen: nil)
        let forwarder = Forwarder(
            config: sink, sink: try MQTTSink(mqtt, agent: agent), writer: writer, logger: Logger(label: "bench"))
        let drain = try await seconds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await forwarder.run() }
                while forwarder.health.snapshot.delivered < stored.count { try await Task.sleep(for: .milliseconds(2)) }
                group.cancelAll()
            }
        }
        await writer.close()

        let raw = try rawPublish(stored.map { String($0.body) }, port: broker.port)
        return BenchResult(
            bench: "mqtt.drain", value: Double(stored.count) / drain, unit: "events/s",
            baseline: "libmosquitto publishing the same payloads at QoS 1 in a bare loop, \(window) in flight",
            baselineValue: Double(stored.count) / raw)
    }

    static func startBroker(_ dir: String) throws -> (process: Process, port: Int) {
        let port = 20000 + Int.random(in: 0..<20000)
        // set_tcp_nodelay: mosquitto's default holds each small PUBACK for Nagle; a batch that waits
        // for its last PUBACK then loses ~40 ms (10k instead of 70k messages/s, plain libmosquitto too).
        var lines = [
            "listener \(port) 127.0.0.1", "allow_anonymous true", "max_queued_messages 0", "max_inflight_messages 0",
            "set_tcp_nodelay true",
        ]
        if getuid() == 0 { lines.append("user root") }
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        let process = try spawn("/usr/sbin/mosquitto", ["-c", dir + "/mosquitto.conf"])
        Thread.sleep(forTimeInterval: 0.5)
        guard process.isRunning else { throw BenchError("mosquitto did not start") }
        return (process, port)
    }

    /// libmosquitto alone: connect, publish every payload at QoS 1 (its own window of `window`),
    /// wait for the last PUBACK. Seconds taken.
    static func rawPublish(_ payloads: [String], port: Int) throws -> Double {
        mosquitto_lib_init()
        let box = Box()
        let counter = Unmanaged.passRetained(box)
        defer { counter.release() }
        guard let mosq = mosquitto_new("bench-raw", true, counter.toOpaque()) else { throw BenchError("mosquitto_new") }
        defer { mosquitto_destroy(mosq) }
        mosquitto_max_inflight_messages_set(mosq, UInt32(window))
        mosquitto_publish_callback_set(mosq) { _, userdata, _ in
            Unmanaged<Box>.fromOpaque(userdata!).takeUnretainedValue().count.add(1, ordering: .relaxed)
        }
        guard mosquitto_connect(mosq, "127.0.0.1", Int32(port), 30) == MOSQ_ERR_SUCCESS.rawValue,
            mosquitto_loop_start(mosq) == MOSQ_ERR_SUCCESS.rawValue
        else { throw BenchError("raw connect") }
        defer {
            mosquitto_disconnect(mosq)
            mosquitto_loop_stop(mosq, false)
        }
        let topic = "plants/s/lines/l/production.completed"
        return seconds {
            for payload in payloads {
                var payload = payload
                _ = payload.withUTF8 { mosquitto_publish(mosq, nil, topic, Int32($0.count), $0.baseAddress, 1, false) }
            }
            while box.count.load(ordering: .relaxed) < payloads.count { usleep(200) }
        }
    }

    /// PUBACKs counted on libmosquitto's thread.
    final class Box: Sendable {
        let count = Atomic<Int>(0)
    }
}
