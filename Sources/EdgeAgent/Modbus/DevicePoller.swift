import Dispatch
import EdgeAgentCore
import Logging
import ServiceLifecycle
import Synchronization

/// One per device: the driver of a `DevicePollerStateMachine`, which decides when to read, what
/// goes to the pipeline and how to back off. It sleeps on the injected clock, hands readings
/// to the pipeline, and reads on the link's own thread: a device that is down or slow never
/// delays another one (devices on one serial line share that line's thread, in turn).
///
/// On the monotonic clock, a device with a link of its own is driven on the link's thread: it
/// reads, hands the reading to the bus (`Handover`) and waits there for its next deadline, so a
/// cycle blocks that thread once besides the reads and wakes at most the pipeline. A shared
/// serial line's devices read in jobs on the line's thread and sleep on the pool: one device's
/// wait would hold the others' reads up.
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

        /// What the state machine is told of it.
        func reading<I>() -> DevicePollerStateMachine<I>.Reading {
            .init(values: values, isolated: isolated, requests: results, failure: linkError?.description)
        }
    }

    public func run() async throws {
        try await untilGracefulShutdown {
            if self.ownsLink, self.clock is ContinuousClock {
                try await self.driveOnLink()
            } else {
                try await self.drive(self.clock)
            }
        }
    }

    /// Performs the machine's actions until it asks for nothing more (stopped): reads in jobs on
    /// the link's thread, sleeps on `clock`. Cancellation ends a sleep, and the machine stops; a
    /// reading in hand is handed over all the same (`SignalBus.deliver`), as `Handover` does.
    private func drive<C: Clock<Duration>>(_ clock: C) async throws {
        typealias Machine = DevicePollerStateMachine<C.Instant>
        var machine = Machine(device: device, ruleTags: ruleTags, maxBackoff: maxBackoff)
        var actions = machine.start(at: clock.now)
        var metrics = Telemetry.Modbus(device: device.name)
        while !actions.isEmpty {
            var next: [Machine.Action] = []
            for action in actions {
                switch action {
                case let .read(plan):
                    let device = self.device, wanted = machine.forwarded
                    let (time, cycle) = try await link.run { client in
                        (Timestamp.now(), Self.poll(client, plan: plan, device: device, wanted: wanted))
                    }
                    next += machine.read(cycle.reading(), at: clock.now, time: time)
                case let .publish(samples, events):
                    await bus.deliver(Signal(samples: samples, events: events))
                case let .sleep(deadline):
                    do {
                        try await clock.sleep(until: deadline, tolerance: nil)
                        next += machine.tick(at: clock.now)
                    } catch {
                        machine.stop()
                    }
                case .count, .log, .reportHealth:
                    report(action, &metrics)
                }
            }
            actions = next
        }
    }

    /// Runs the machine on the link's thread (`driveOnLink(_:_:)`), which hands its readings to
    /// the bus itself. Cancellation stops the machine, at once even in the middle of a wait; a
    /// reading in hand is still handed over, and the poller ends once the pipeline took it.
    private func driveOnLink() async throws {
        let handover = Handover(bus: bus)
        try await withTaskCancellationHandler {
            try await self.link.run { client in self.driveOnLink(client, handover) }
        } onCancel: {
            handover.stop()
        }
        await handover.taken()
    }

    /// Performs the machine's actions on the link's thread until it asks for nothing more: reads
    /// there, hands readings over and waits for the next deadline (`Handover`); a stop ends a
    /// wait, and the machine stops.
    private func driveOnLink(_ client: ModbusClient, _ handover: Handover) {
        typealias Machine = DevicePollerStateMachine<ContinuousClock.Instant>
        var machine = Machine(device: device, ruleTags: ruleTags, maxBackoff: maxBackoff)
        var actions = machine.start(at: .now)
        var metrics = Telemetry.Modbus(device: device.name)
        while !actions.isEmpty {
            var next: [Machine.Action] = []
            for action in actions {
                switch action {
                case let .read(plan):
                    let time = Timestamp.now()
                    let cycle = Self.poll(client, plan: plan, device: device, wanted: machine.forwarded)
                    next += machine.read(cycle.reading(), at: .now, time: time)
                case let .publish(samples, events):
                    handover.send(Signal(samples: samples, events: events))
                case let .sleep(deadline):
                    if handover.sleep(until: deadline) {
                        next += machine.tick(at: max(deadline, .now))
                    } else {
                        machine.stop()
                    }
                case .count, .log, .reportHealth:
                    report(action, &metrics)
                }
            }
            actions = next
        }
    }

    /// Performs an action that neither reads, waits nor hands anything over, for either driver.
    private func report<I>(_ action: DevicePollerStateMachine<I>.Action, _ metrics: inout Telemetry.Modbus)
    where I.Duration == Duration {
        switch action {
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
        case let .reportHealth(time, error):
            health?.polled(device.name, at: time, error: error)
        case .read, .publish, .sleep:
            preconditionFailure("not a report: \(action)")
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

    /// Between a poller driven on its link's thread and the bus: the thread's hand-overs and its
    /// waits, each ended by a stop. One reading at most is on its way to the pipeline: the next
    /// waits until the pipeline took it (back-pressure, as `SignalBus.send`). A stop ends that
    /// wait, and the reading in hand is handed over all the same, so two may then be on their way:
    /// `taken` waits for both. Nothing the machine published is dropped here.
    ///
    /// One semaphore wakes the thread: `stop` signals it, and a reading taken does only when the
    /// thread waits to hand the next one over (`handing`, set and cleared under the lock), so a
    /// wait for a deadline ends early only at a stop, even one signalled before that wait began.
    final class Handover: Sendable {
        private struct State {
            /// Signals handed over and not yet taken.
            var inFlight = 0
            /// The thread waits to hand the next one over.
            var handing = false
            var stopped = false
            /// The task waiting until the last signal handed over is taken.
            var waiter: CheckedContinuation<Void, Never>?
        }
        private let state = Mutex(State())
        private let wakes = DispatchSemaphore(value: 0)
        let bus: SignalBus

        init(bus: SignalBus) { self.bus = bus }

        /// Hands `signal` over once the previous one was taken, or at once when stopped.
        func send(_ signal: Signal) {
            while true {
                let handed = state.withLock { state in
                    if state.stopped || state.inFlight == 0 {
                        state.inFlight += 1
                        return true
                    }
                    state.handing = true
                    return false
                }
                if handed { break }
                wakes.wait()
            }
            bus.post(signal) { self.took() }
        }

        /// Returns once no signal handed over waits to be taken (the thread hands no more).
        func taken() async {
            await withCheckedContinuation { continuation in
                let waiting = state.withLock { state in
                    if state.inFlight > 0 { state.waiter = continuation }
                    return state.inFlight > 0
                }
                if !waiting { continuation.resume() }
            }
        }

        /// The pipeline took a signal handed over (or the bus dropped it).
        private func took() {
            let (handing, waiter) = state.withLock { state in
                state.inFlight -= 1
                guard state.inFlight == 0 else { return (false, CheckedContinuation<Void, Never>?.none) }
                defer { (state.handing, state.waiter) = (false, nil) }
                return (state.handing, state.waiter)
            }
            if handing { wakes.signal() }
            waiter?.resume()
        }

        /// Blocks until `deadline`; false when stopped first (a stop counts even when the
        /// deadline has passed already).
        func sleep(until deadline: ContinuousClock.Instant) -> Bool {
            if state.withLock({ $0.stopped }) { return false }
            let left = max(.zero, ContinuousClock.now.duration(to: deadline))
            let nanoseconds = left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000
            _ = wakes.wait(timeout: .now() + .nanoseconds(Int(nanoseconds)))
            return !state.withLock { $0.stopped }
        }

        func stop() {
            state.withLock { $0.stopped = true }
            wakes.signal()
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
        cycle.values.reserveCapacity(wanted?.count(where: \.self) ?? device.tags.count)
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
