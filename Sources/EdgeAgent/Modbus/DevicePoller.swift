import Dispatch
import EdgeAgentCore
import Logging
import ServiceLifecycle

/// One per device: the driver of a `DevicePollerStateMachine`, which decides when to read, what
/// goes to the pipeline and how to back off. It sleeps on the injected clock, hands readings
/// to the pipeline, and reads on the link's own thread: a device that is down or slow never
/// delays another one (devices on one serial line share that line's thread, in turn).
///
/// On the monotonic clock, a device with a link of its own waits out the sleep before a read on
/// the link's thread, in the read's own job: a cycle is then one hand-off to the link and one
/// back, without a timer firing on the cooperative pool in between. A shared serial line's
/// devices sleep on the pool: one device's wait would hold the others' reads up.
public final class DevicePoller: Service {
    public let device: DeviceConfig
    let link: Confined<ModbusClient>
    /// Whether no other device reads through `link`, so that waiting on its thread delays no one.
    let ownsLink: Bool
    let bus: SignalBus
    let logger: Logger
    let maxBackoff: Duration
    let ruleTags: Set<String>?
    let health: AgentHealth?
    let clock: any Clock<Duration>

    public init(
        device: DeviceConfig, link: Confined<ModbusClient>, ownsLink: Bool = true, bus: SignalBus, logger: Logger,
        health: AgentHealth? = nil, maxBackoff: Duration = .seconds(10), ruleTags: Set<String>? = nil,
        clock: any Clock<Duration> = ContinuousClock()
    ) {
        self.device = device
        self.link = link
        self.ownsLink = ownsLink
        self.bus = bus
        self.health = health
        var logger = logger
        logger[metadataKey: "device"] = "\(device.name)"
        self.logger = logger
        self.maxBackoff = maxBackoff
        self.ruleTags = ruleTags
        self.clock = clock
    }

    /// One poll cycle's result, computed on the link's thread.
    public struct Cycle: Sendable {
        public var values: [(tag: Int, value: TagValue?)] = []
        /// Requests that answered with an exception and are read tag by tag from now on.
        public var isolated: [ReadPlan.Request] = []
        /// Set when the device could not be reached: the cycle was abandoned.
        public var linkError: ModbusError?
        /// Requests by outcome, for the metrics.
        public var results = ModbusRequestCounts()
    }

    public func run() async throws {
        try await untilGracefulShutdown { try await self.drive(self.clock) }
    }

    /// Performs the machine's actions until it asks for nothing more (stopped). A sleep waited
    /// out on the link's thread ends the wait early at cancellation, and the machine stops.
    private func drive<C: Clock<Duration>>(_ clock: C) async throws {
        typealias Machine = DevicePollerStateMachine<C.Instant>
        var machine = Machine(device: device, ruleTags: ruleTags, maxBackoff: maxBackoff)
        var actions = machine.start(at: clock.now)
        // The end of a sleep that the next read waits out on the link's thread.
        var wake: ContinuousClock.Instant?
        let alarm = Alarm()
        var metrics = Telemetry.Modbus(device: device.name)
        while !actions.isEmpty {
            var next: [Machine.Action] = []
            for action in actions {
                switch action {
                case let .read(plan):
                    let device = self.device, wanted = machine.forwarded, until = wake
                    wake = nil
                    let outcome = try await withTaskCancellationHandler {
                        try await link.run { client -> (Timestamp, Cycle)? in
                            if let until, !alarm.sleep(until: until) { return nil }
                            return (Timestamp.now(), Self.poll(client, plan: plan, device: device, wanted: wanted))
                        }
                    } onCancel: {
                        alarm.ring()
                    }
                    guard let (time, cycle) = outcome else {
                        machine.stop()  // rung while waiting
                        break
                    }
                    let reading = Machine.Reading(
                        values: cycle.values, isolated: cycle.isolated, requests: cycle.results,
                        failure: cycle.linkError?.description)
                    next += machine.read(reading, at: clock.now, time: time)
                case let .count(requests, duration):
                    metrics.record(requests, duration: duration)
                case let .log(.isolated(request)):
                    logger.warning(
                        "A request answered with an exception; its tags are read one by one.",
                        metadata: ["request": "\(request)"])
                case let .log(.unreachable(error)):
                    logger.warning("Device unreachable; retrying with backoff.", metadata: ["error": "\(error)"])
                case .log(.reachable):
                    logger.notice("Device reachable again.")
                case let .publish(samples, events):
                    await bus.send(Signal(samples: samples, events: events))
                case let .reportHealth(time, error):
                    health?.polled(device.name, at: time, error: error)
                case let .sleep(deadline):
                    if ownsLink, let instant = deadline as? ContinuousClock.Instant {
                        wake = instant  // the read the tick asks for begins then, on the link's thread
                        next += machine.tick(at: max(deadline, clock.now))
                    } else {
                        do {
                            try await clock.sleep(until: deadline, tolerance: nil)
                            next += machine.tick(at: clock.now)
                        } catch {
                            machine.stop()
                        }
                    }
                }
            }
            actions = next
        }
    }

    /// One poller per device; devices on the same serial port share that line's thread, in turn.
    static func pollers(
        for devices: [DeviceConfig], bus: SignalBus, logger: Logger, health: AgentHealth, ruleTags: Set<String>
    ) throws -> [DevicePoller] {
        var serialLines: [String: Confined<ModbusClient>] = [:]
        var devicesOnLine: [String: Int] = [:]
        for case let .rtu(path, _, _, _, _) in devices.map(\.transport) { devicesOnLine[path, default: 0] += 1 }
        return try devices.map { device in
            var link = Confined(try ModbusClient(device.transport, timeout: device.timeout))
            var ownsLink = true
            if case let .rtu(path, _, _, _, _) = device.transport {
                if let shared = serialLines[path] { link = shared } else { serialLines[path] = link }
                ownsLink = devicesOnLine[path] == 1
            }
            return DevicePoller(
                device: device, link: link, ownsLink: ownsLink, bus: bus, logger: logger, health: health,
                ruleTags: ruleTags)
        }
    }

    /// The wait before a read on the link's thread, cut short when the poller's task is cancelled
    /// (graceful shutdown): a ring before or during the wait ends it.
    final class Alarm: Sendable {
        private let rings = DispatchSemaphore(value: 0)

        /// Blocks until `deadline`; false when rung first (a ring counts even when the deadline
        /// has passed already).
        func sleep(until deadline: ContinuousClock.Instant) -> Bool {
            let left = max(.zero, ContinuousClock.now.duration(to: deadline))
            let nanoseconds = left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000
            return rings.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .timedOut
        }

        func ring() { rings.signal() }
    }

    /// Reads every tag of `device` once (`modbus read`, commissioning, tests): nil for a tag that
    /// answered with an exception; throws when the device cannot be reached.
    public static func readOnce(_ device: DeviceConfig) throws -> [(tag: TagConfig, value: TagValue?)] {
        let client = try ModbusClient(device.transport, timeout: device.timeout)
        let plan = ReadPlan(tags: device.tags, maxGap: device.maxGap, maxRegistersPerRead: device.maxRegistersPerRead)
        let cycle = poll(client, plan: plan, device: device)
        if let error = cycle.linkError { throw error }
        var values = [TagValue?](repeating: nil, count: device.tags.count)
        for (i, value) in cycle.values { values[i] = value }
        return zip(device.tags, values).map { ($0, $1) }
    }

    /// Reads every request of the plan (blocking; on the link's thread). Values are decoded only
    /// for the tags `wanted` marks (every one when nil): the others are read, as configured, but
    /// nothing takes their values.
    public static func poll(_ client: ModbusClient, plan: ReadPlan, device: DeviceConfig, wanted: [Bool]? = nil)
        -> Cycle
    {
        var cycle = Cycle()
        client.setTimeout(device.timeout)
        do {
            try client.connect()
        } catch {
            cycle.linkError = error as? ModbusError
            return cycle
        }
        cycle.values.reserveCapacity(device.tags.count)
        /// Reads one request into the cycle's values, counting its outcome.
        func counted(_ request: ReadPlan.Request) throws {
            do {
                try read(client, request, device: device, wanted: wanted, into: &cycle.values)
                cycle.results.ok += 1
            } catch let error as ModbusError {
                switch error.code {
                case .exception: cycle.results.exception += 1
                case .timeout: cycle.results.timeout += 1
                default: cycle.results.error += 1
                }
                throw error
            }
        }
        for request in plan.requests {
            do {
                try counted(request)
            } catch let error as ModbusError where error.isException {
                if request.tags.count > 1 {
                    cycle.isolated.append(request)
                    for single in plan.isolating(request, tags: device.tags).requests
                    where request.tags.contains(single.tags[0]) {
                        do { try counted(single) } catch { cycle.values.append((single.tags[0], nil)) }
                    }
                } else {
                    cycle.values.append((request.tags[0], nil))
                }
            } catch {
                cycle.linkError =
                    error as? ModbusError ?? ModbusError(code: .connection, message: "\(error)", context: "")
                return cycle
            }
        }
        return cycle
    }

    static func read(
        _ client: ModbusClient, _ request: ReadPlan.Request, device: DeviceConfig, wanted: [Bool]?,
        into values: inout [(tag: Int, value: TagValue?)]
    ) throws {
        switch request.area {
        case .holding, .input:
            let registers = try client.readRegisters(
                input: request.area == .input, unit: device.unitID, address: request.address, count: request.count)
            RegisterDecoding.decode(request, registers: registers, tags: device.tags, wanted: wanted, into: &values)
        case .coil, .discrete:
            let bits = try client.readBits(
                discrete: request.area == .discrete, unit: device.unitID, address: request.address, count: request.count
            )
            RegisterDecoding.decode(request, bits: bits, tags: device.tags, wanted: wanted, into: &values)
        }
    }
}
