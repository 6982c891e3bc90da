import EdgeAgentCore
import Logging
import ServiceLifecycle

/// One per device: reads its tags every `poll_interval` (deadlines on a monotonic clock, so no
/// drift; missed cycles are skipped, not queued), hands each reading to the pipeline, reports
/// `device.connection.changed`, and reconnects with backoff. Its Modbus calls run on the link's
/// own thread: a device that is down or slow never delays another one (devices on one serial
/// line share that line's thread, in turn).
public final class DevicePoller: Service {
    public let device: DeviceConfig
    /// `DEVICE.TAG` for each tag, built once rather than every cycle.
    let sampleTags: [String]
    /// Per tag, whether a rule reads it: only those go to the pipeline (every tag is still read,
    /// as configured; the others would only be hashed and compared there, every cycle).
    let forwarded: [Bool]
    let link: Confined<ModbusClient>
    let bus: SignalBus
    let logger: Logger
    let maxBackoff: Duration
    let health: AgentHealth?

    public init(
        device: DeviceConfig, link: Confined<ModbusClient>, bus: SignalBus, logger: Logger,
        health: AgentHealth? = nil, maxBackoff: Duration = .seconds(10), ruleTags: Set<String>? = nil
    ) {
        self.device = device
        sampleTags = device.tags.map(device.qualifiedName)
        forwarded = sampleTags.map { ruleTags?.contains($0) ?? true }
        self.link = link
        self.bus = bus
        self.health = health
        var logger = logger
        logger[metadataKey: "device"] = "\(device.name)"
        self.logger = logger
        self.maxBackoff = maxBackoff
    }

    /// One poll cycle's result, computed on the link's thread.
    public struct Cycle: Sendable {
        public var values: [(tag: Int, value: TagValue?)] = []
        /// Requests that answered with an exception and are read tag by tag from now on.
        public var isolated: [ReadPlan.Request] = []
        /// Set when the device could not be reached: the cycle was abandoned.
        public var linkError: ModbusError?
        /// Requests by outcome, for the metrics.
        public var results = Results()
    }

    public struct Results: Sendable {
        public var ok = 0, exception = 0, timeout = 0, error = 0
        var byName: [(String, Int)] {
            [("ok", ok), ("exception", exception), ("timeout", timeout), ("error", error)].filter { $0.1 > 0 }
        }
    }

    public func run() async throws {
        try await untilGracefulShutdown { try await self.loop() }
    }

    private func loop() async throws {
        var plan = ReadPlan(tags: device.tags, maxGap: device.maxGap, maxRegistersPerRead: device.maxRegistersPerRead)
        var connected: Bool?
        var failures = 0
        let clock = ContinuousClock()
        var deadline = clock.now
        do {
            while !Task.isCancelled {
                let time = Timestamp.now()
                let current = plan
                let device = self.device
                let started = clock.now
                let cycle = try await link.run { client in Self.poll(client, plan: current, device: device) }
                Telemetry.modbus(device: device.name, results: cycle.results, duration: clock.now - started)
                for request in cycle.isolated {
                    plan = plan.isolating(request, tags: device.tags)
                    logger.warning(
                        "A request answered with an exception; its tags are read one by one.",
                        metadata: ["request": "\(request)"])
                }
                var signal = Signal(
                    samples: cycle.values.compactMap {
                        forwarded[$0.tag] ? Sample(tag: sampleTags[$0.tag], value: $0.value, time: time) : nil
                    })
                if let error = cycle.linkError {
                    failures += 1
                    if connected != false {
                        logger.warning("Device unreachable; retrying with backoff.", metadata: ["error": "\(error)"])
                        signal.samples = sampleTags.indices.compactMap {
                            forwarded[$0] ? Sample(tag: sampleTags[$0], value: nil, time: time) : nil
                        }
                        signal.events = [connectionChanged(false, error: error.description, time: time)]
                        connected = false
                    }
                } else {
                    failures = 0
                    if connected != true {
                        if connected == false { logger.notice("Device reachable again.") }
                        signal.events = [connectionChanged(true, error: nil, time: time)]
                        connected = true
                    }
                }
                health?.polled(device.name, at: time, error: cycle.linkError?.description)
                if !signal.samples.isEmpty || !signal.events.isEmpty { await bus.send(signal) }
                if failures > 0 {
                    let backoff = min(maxBackoff, device.pollInterval * (1 << min(failures - 1, 16)))
                    deadline = clock.now + backoff
                } else {
                    deadline += device.pollInterval
                    if deadline < clock.now { deadline = clock.now + device.pollInterval }  // skip, do not queue
                }
                try await clock.sleep(until: deadline)
            }
        }
    }

    /// One poller per device; devices on the same serial port share that line's thread, in turn.
    static func pollers(
        for devices: [DeviceConfig], bus: SignalBus, logger: Logger, health: AgentHealth, ruleTags: Set<String>
    ) throws -> [DevicePoller] {
        var serialLines: [String: Confined<ModbusClient>] = [:]
        return try devices.map { device in
            var link = Confined(try ModbusClient(device.transport, timeout: device.timeout))
            if case let .rtu(path, _, _, _, _) = device.transport {
                if let shared = serialLines[path] { link = shared } else { serialLines[path] = link }
            }
            return DevicePoller(
                device: device, link: link, bus: bus, logger: logger, health: health, ruleTags: ruleTags)
        }
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

    func connectionChanged(_ connected: Bool, error: String?, time: Timestamp) -> Event {
        Event(
            type: .deviceConnectionChanged, subject: device.name, time: time,
            data: [
                "device": .string(device.name), "connected": .bool(connected),
                "error": error.map { .string($0) } ?? .null,
            ])
    }

    /// Reads every request of the plan (blocking; on the link's thread).
    public static func poll(_ client: ModbusClient, plan: ReadPlan, device: DeviceConfig) -> Cycle {
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
                try read(client, request, device: device, into: &cycle.values)
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
        _ client: ModbusClient, _ request: ReadPlan.Request, device: DeviceConfig,
        into values: inout [(tag: Int, value: TagValue?)]
    ) throws {
        switch request.area {
        case .holding, .input:
            let registers = try client.readRegisters(
                input: request.area == .input, unit: device.unitID, address: request.address, count: request.count)
            RegisterDecoding.decode(request, registers: registers, tags: device.tags, into: &values)
        case .coil, .discrete:
            let bits = try client.readBits(
                discrete: request.area == .discrete, unit: device.unitID, address: request.address, count: request.count
            )
            RegisterDecoding.decode(request, bits: bits, tags: device.tags, into: &values)
        }
    }
}
