import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

extension Integration {
    /// Pollers against real pymodbus servers that go away, come back, and answer too slowly. Other
    /// devices keep their poll rate (counted in readings, not timed).
    @Suite struct DevicePollerTests {
        static let spec = #"[{"area": "holding", "address": 0, "registers": [7, 8]}]"#

        static func device(_ name: String, port: Int, interval: Duration = .milliseconds(100)) -> DeviceConfig {
            var device = DeviceConfig(name: name, transport: .tcp(host: "127.0.0.1", port: port))
            device.pollInterval = interval
            device.timeout = .milliseconds(300)
            device.tags = [
                TagConfig(name: "a", area: .holding, address: 0, type: .uint16),
                TagConfig(name: "b", area: .holding, address: 1, type: .uint16),
            ]
            return device
        }

        /// What the pipeline would see, per device: good readings and connection events.
        final class Recorder: Sendable {
            let good = Mutex<[String: Int]>([:])
            let connections = Mutex<[String: [Bool]]>([:])

            func consume(_ bus: SignalBus) async {
                for await signal in bus {
                    for sample in signal.samples where sample.quality == .good && sample.tag.hasSuffix(".a") {
                        good.withLock { $0[String(sample.tag.dropLast(2)), default: 0] += 1 }
                    }
                    for event in signal.events {
                        if case let .bool(up)? = event.data["connected"] {
                            connections.withLock { $0[event.subject, default: []].append(up) }
                        }
                    }
                }
            }

            func readings(_ device: String) -> Int { good.withLock { $0[device] ?? 0 } }
            func changes(_ device: String) -> [Bool] { connections.withLock { $0[device] ?? [] } }
        }

        /// Runs pollers for `devices` while `body` runs.
        func polling(_ devices: [DeviceConfig], _ body: (Recorder) async throws -> Void) async throws {
            let bus = SignalBus()
            let recorder = Recorder()
            let logger = Logger(label: "test")
            let pollers = try devices.map {
                DevicePoller(
                    device: $0, link: Confined(try ModbusClient($0.transport, timeout: $0.timeout)), bus: bus,
                    logger: logger)
            }
            let group = ServiceGroup(services: pollers, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask { await recorder.consume(bus) }
                try await body(recorder)
                await group.triggerGracefulShutdown()
                bus.finish()
                try await tasks.waitForAll()
            }
        }

        @Test func aDeviceAbsentAtStartIsPickedUpWhenItAppears() async throws {
            let dir = TemporaryDirectory()
            let steady = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let probe = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let latePort = probe.port
            await probe.stop()
            try await polling([Self.device("steady", port: steady.port), Self.device("late", port: latePort)]) {
                recorder in
                #expect(await eventually(timeout: .seconds(10)) { recorder.changes("late") == [false] })
                let before = recorder.readings("steady")
                try await Task.sleep(for: .seconds(2))
                #expect(
                    recorder.readings("steady") - before >= 12, "steady kept polling every 100 ms while late was absent"
                )
                let late = try await ModbusTestServer(directory: dir, tags: Self.spec, port: latePort)
                #expect(
                    await eventually(timeout: .seconds(15)) {
                        recorder.changes("late") == [false, true] && recorder.readings("late") > 0
                    })
                await late.stop()
            }
            await steady.stop()
        }

        @Test func aServerStoppedMidRunIsReportedAndRejoined() async throws {
            let dir = TemporaryDirectory()
            let steady = try await ModbusTestServer(directory: dir, tags: Self.spec)
            var flaky = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let port = flaky.port
            try await polling([Self.device("steady", port: steady.port), Self.device("flaky", port: port)]) {
                recorder in
                #expect(await eventually { recorder.changes("flaky") == [true] })
                await flaky.stop()
                #expect(await eventually(timeout: .seconds(10)) { recorder.changes("flaky") == [true, false] })
                let before = recorder.readings("steady")
                try await Task.sleep(for: .seconds(2))
                #expect(recorder.readings("steady") - before >= 12)
                flaky = try await ModbusTestServer(directory: dir, tags: Self.spec, port: port)
                #expect(await eventually(timeout: .seconds(15)) { recorder.changes("flaky") == [true, false, true] })
            }
            await flaky.stop()
            await steady.stop()
        }

        @Test func aServerSlowerThanTheTimeoutDoesNotSlowTheOthers() async throws {
            let dir = TemporaryDirectory()
            let steady = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let slow = try await ModbusTestServer(directory: dir, tags: Self.spec, delay: 1.0)
            try await polling([Self.device("steady", port: steady.port), Self.device("slow", port: slow.port)]) {
                recorder in
                #expect(await eventually(timeout: .seconds(10)) { recorder.changes("slow") == [false] })
                let before = recorder.readings("steady")
                try await Task.sleep(for: .seconds(2))
                #expect(recorder.readings("steady") - before >= 12)
                #expect(recorder.readings("slow") == 0, "a reply later than the timeout is never taken as good")
            }
            await slow.stop()
            await steady.stop()
        }
    }
}
