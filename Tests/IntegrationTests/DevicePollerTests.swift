import Clocks
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import EdgeAgent

extension Integration {
    /// Pollers against real pymodbus servers that go away, come back, and answer too slowly. The
    /// pollers sleep on a test clock: the test moves time one interval at a time and waits for
    /// each reading, so a loaded machine is slower, never wrong.
    @Suite struct DevicePollerTests {
        static let spec = #"[{"area": "holding", "address": 0, "registers": [7, 8]}]"#

        static func device(_ name: String, port: Int, timeout: Duration = .milliseconds(300)) -> DeviceConfig {
            var device = DeviceConfig(name: name, transport: .tcp(host: "127.0.0.1", port: port))
            device.pollInterval = interval
            device.timeout = timeout
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

        /// The pollers' clock and what they report, for the test's body.
        struct Run {
            let clock: TestClock<Duration>
            let recorder: Recorder
            let health: AgentHealth

            /// Polls that failed for `device` so far.
            func failedPolls(_ device: String) -> Int { health.devices.withLock { $0[device]?.failedPolls ?? 0 } }

            /// Moves the clock one poll interval at a time, `intervals` times, and expects a new
            /// reading of `device` after each (within 15 s).
            func expectPolling(_ device: String, intervals: Int, sourceLocation: SourceLocation = #_sourceLocation)
                async
            {
                #expect(
                    await eventually { recorder.readings(device) > 0 }, "\(device) read at start",
                    sourceLocation: sourceLocation)
                let before = recorder.readings(device)
                for step in 1...intervals {
                    await clock.advance(by: DevicePollerTests.interval)
                    let read = await eventually(timeout: .seconds(15)) { recorder.readings(device) >= before + step }
                    #expect(read, "\(device) read again after interval \(step)", sourceLocation: sourceLocation)
                    if !read { return }
                }
            }

            /// Moves the clock an interval at a time until `condition` holds (a backoff runs on it too).
            func advance(until condition: () -> Bool) async -> Bool {
                await eventually(timeout: .seconds(60)) {
                    if condition() { return true }
                    await clock.advance(by: DevicePollerTests.interval)
                    return condition()
                }
            }
        }

        static let interval = Duration.milliseconds(100)

        /// Runs pollers for `devices` on a test clock while `body` runs.
        func polling(_ devices: [DeviceConfig], _ body: (Run) async throws -> Void) async throws {
            let bus = SignalBus()
            let run = Run(clock: TestClock(), recorder: Recorder(), health: AgentHealth(report: .init()))
            let logger = Logger(label: "test")
            let pollers = try devices.map {
                DevicePoller(
                    device: $0, link: Confined(try ModbusClient($0.transport, timeout: $0.timeout)), bus: bus,
                    logger: logger, health: run.health, clock: run.clock)
            }
            let group = ServiceGroup(services: pollers, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask { await run.recorder.consume(bus) }
                try await body(run)
                await group.triggerGracefulShutdown()
                bus.finish()
                try await tasks.waitForAll()
            }
        }

        /// Devices on one serial line take turns on its thread, so none waits for its next read
        /// there (it would hold the others' reads up); a device with a link of its own does.
        @Test func onlyADeviceWithALinkOfItsOwnWaitsOnTheLinksThread() throws {
            func serial(_ name: String, _ path: String) -> DeviceConfig {
                DeviceConfig(
                    name: name, transport: .rtu(device: path, baud: 9600, parity: .none, dataBits: 8, stopBits: 1))
            }
            let pollers = try DevicePoller.pollers(
                for: [
                    serial("a", "/dev/ttyEdgeTest0"), serial("b", "/dev/ttyEdgeTest0"),
                    serial("c", "/dev/ttyEdgeTest1"),
                    Self.device("d", port: 1502),
                ], bus: SignalBus(), logger: Logger(label: "test"), health: AgentHealth(report: .init()), ruleTags: [])
            #expect(pollers.map(\.ownsLink) == [false, false, true, true])
            #expect(pollers[0].link === pollers[1].link && pollers[1].link !== pollers[2].link)
        }

        @Test func aDeviceAbsentAtStartIsPickedUpWhenItAppears() async throws {
            let dir = TemporaryDirectory()
            let steady = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let probe = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let latePort = probe.port
            await probe.stop()
            try await polling([Self.device("steady", port: steady.port), Self.device("late", port: latePort)]) {
                run in
                #expect(await eventually(timeout: .seconds(10)) { run.recorder.changes("late") == [false] })
                await run.expectPolling("steady", intervals: 12)
                let late = try await ModbusTestServer(directory: dir, tags: Self.spec, port: latePort)
                #expect(
                    await run.advance {
                        run.recorder.changes("late") == [false, true] && run.recorder.readings("late") > 0
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
                run in
                #expect(await eventually { run.recorder.changes("flaky") == [true] })
                await flaky.stop()
                #expect(await run.advance { run.recorder.changes("flaky") == [true, false] })
                await run.expectPolling("steady", intervals: 12)
                flaky = try await ModbusTestServer(directory: dir, tags: Self.spec, port: port)
                #expect(await run.advance { run.recorder.changes("flaky") == [true, false, true] })
            }
            await flaky.stop()
            await steady.stop()
        }

        @Test func aServerSlowerThanTheTimeoutDoesNotSlowTheOthers() async throws {
            let dir = TemporaryDirectory()
            let steady = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let slow = try await ModbusTestServer(directory: dir, tags: Self.spec, delay: 1.0)
            try await polling([Self.device("steady", port: steady.port), Self.device("slow", port: slow.port)]) {
                run in
                #expect(await eventually(timeout: .seconds(10)) { run.recorder.changes("slow") == [false] })
                await run.expectPolling("steady", intervals: 12)
                #expect(await run.advance { run.failedPolls("slow") >= 3 })
                #expect(run.recorder.readings("slow") == 0, "a reply later than the timeout is never taken as good")
                #expect(run.recorder.changes("slow") == [false])
            }
            await slow.stop()
            await steady.stop()
        }

        /// A device whose read hangs far longer than a step may take holds only its own link.
        @Test func aDeviceWhoseReadHangsDoesNotDelayTheOthers() async throws {
            let dir = TemporaryDirectory()
            let steady = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let hung = try await ModbusTestServer(directory: dir, tags: Self.spec, delay: 600)
            try await polling([
                Self.device("steady", port: steady.port), Self.device("hung", port: hung.port, timeout: .seconds(60)),
            ]) { run in
                await run.expectPolling("steady", intervals: 12)
                #expect(run.recorder.changes("hung") == [], "still waiting for its first answer")
                await hung.stop()  // ends the read in hand
                #expect(await eventually { run.recorder.changes("hung") == [false] })
            }
            await steady.stop()
        }

        /// A stop that arrives while a read is in hand lets it finish, and the reading reaches the
        /// pipeline: the first here, which reports the device connected. Both drivers: a device
        /// with a link of its own (on the link's thread, which the stop wakes) and one that shares
        /// its link, a serial line (from a task, which the stop cancels).
        @Test(arguments: [true, false])
        func aReadingInHandWhenTheStopArrivesReachesThePipeline(ownsLink: Bool) async throws {
            let dir = TemporaryDirectory()
            let server = try await ModbusTestServer(directory: dir, tags: Self.spec, delay: 2)
            let device = Self.device("slow", port: server.port, timeout: .seconds(5))
            let bus = SignalBus(), recorder = Recorder(), logger = Logger(label: "test")
            let poller = DevicePoller(
                device: device, link: Confined(try ModbusClient(device.transport, timeout: device.timeout)),
                ownsLink: ownsLink, bus: bus, logger: logger)
            let group = ServiceGroup(services: [poller], logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { await recorder.consume(bus) }
                tasks.addTask {
                    try await group.run()
                    bus.finish()
                }
                #expect(await eventually(timeout: .seconds(15)) { server.delayedRequests > 0 }, "the read is in hand")
                #expect(recorder.changes("slow") == [], "and not answered yet")
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(recorder.changes("slow") == [true])
            await server.stop()
        }

        /// A device with a link of its own, on the real clock, is polled on the link's thread, which
        /// hands its readings over one at a time: while the pipeline takes none it reads once more
        /// and waits, rather than reading ahead. A second device, whose readings are taken, shows
        /// that time passed meanwhile: fifty of its polls, at the same interval.
        @Test func aPollerReadsNoFurtherAheadOfThePipelineThanOneReading() async throws {
            let dir = TemporaryDirectory()
            let server = try await ModbusTestServer(directory: dir, tags: Self.spec)
            var stalled = Self.device("stalled", port: server.port)
            var witness = Self.device("witness", port: server.port)
            stalled.pollInterval = .milliseconds(2)
            witness.pollInterval = .milliseconds(2)
            let stalledBus = SignalBus(), witnessBus = SignalBus(), recorder = Recorder()
            let logger = Logger(label: "test")
            let pollers = try [(stalled, stalledBus), (witness, witnessBus)].map { device, bus in
                DevicePoller(
                    device: device, link: Confined(try ModbusClient(device.transport, timeout: device.timeout)),
                    bus: bus, logger: logger)
            }
            let group = ServiceGroup(services: pollers, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask { await recorder.consume(witnessBus) }
                #expect(await eventually { recorder.readings("witness") >= 50 })
                let taking = Timestamp.now()
                var signals = stalledBus.makeAsyncIterator()
                var times: [Timestamp] = []
                while times.count < 3, let signal = await signals.next() {
                    times += signal.samples.prefix(1).map(\.time)
                }
                #expect(times.count == 3)
                #expect(times.prefix(2).allSatisfy { $0 <= taking }, "two readings before the pipeline took any")
                #expect(times.dropFirst(2).allSatisfy { $0 >= taking }, "the third once it took the first: \(times)")
                await group.triggerGracefulShutdown()
                stalledBus.finish()
                witnessBus.finish()
                try await tasks.waitForAll()
            }
            await server.stop()
        }
    }
}
