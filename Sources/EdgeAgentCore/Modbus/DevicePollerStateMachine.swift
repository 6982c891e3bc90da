/// A device poller's policy: when to read, what a reading hands to the pipeline, when the device
/// counts as unreachable and how long to back off. The driver performs its actions on a Modbus
/// link and a clock and feeds the outcomes back; the machine itself does no I/O.
///
/// Deadlines are on a monotonic clock (`Instant`), so polling does not drift; a cycle that
/// overran its deadline skips the missed ones rather than queueing them. A cycle that fails
/// (no connection, a timeout, a broken link: the device is unreachable, whatever the cause)
/// is retried after a backoff; any answer ends it.
///
/// | event | actions |
/// |---|---|
/// | `start`, `tick` | `read` (nothing once stopped) |
/// | `read`, answered | `count`, `reportHealth`, `publish` the values, `sleep` until the next deadline |
/// | `read`, unreachable | `count`, `reportHealth`, `publish` what was read, `sleep` for the backoff |
/// | `stop` | no more `read` nor `sleep`; a reading in hand is still reported |
///
/// A reading also logs each request read tag by tag from then on. The first outcome and every
/// change of it publish `device.connection.changed` and log once; a device that becomes
/// unreachable publishes every tag without a value.
///
/// | failures in a row | backoff (`poll_interval` 250 ms, max 10 s) |
/// |---|---|
/// | 1 | 250 ms (one interval) |
/// | 2 | 500 ms |
/// | 3 | 1 s |
/// | 7+ | 10 s |
public struct DevicePollerStateMachine<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    public enum Action: Sendable, Equatable {
        /// Read every request of the plan, connecting first when the link is down.
        case read(ReadPlan)
        /// The cycle's requests by outcome and how long it took (the metrics).
        case count(ModbusRequestCounts, duration: Duration)
        case log(Log)
        /// Hand these to the pipeline.
        case publish(samples: [Sample], events: [Event])
        /// The device's health: polled at `time`; `error` nil when it answered.
        case reportHealth(time: Timestamp, error: String?)
        /// Wait until then and `tick`.
        case sleep(until: Instant)
    }

    /// What an operator hears: each once, when it happens.
    public enum Log: Sendable, Equatable {
        /// A request answered with an exception; its tags are read one by one from now on (warning).
        case isolated(ReadPlan.Request)
        /// The device stopped answering (warning).
        case unreachable(error: String)
        /// The device answers again after it was unreachable (notice).
        case reachable
    }

    /// One cycle's outcome, as the driver read it.
    public struct Reading: Sendable {
        /// Values by tag index: nil for a tag that answered with an exception.
        public var values: [(tag: Int, value: TagValue?)]
        /// Requests that answered with an exception and are to be read tag by tag.
        public var isolated: [ReadPlan.Request]
        public var requests: ModbusRequestCounts
        /// Why the device could not be reached (the cycle was abandoned); nil when it answered.
        public var failure: String?

        public init(
            values: [(tag: Int, value: TagValue?)] = [], isolated: [ReadPlan.Request] = [],
            requests: ModbusRequestCounts = .init(), failure: String? = nil
        ) {
            self.values = values
            self.isolated = isolated
            self.requests = requests
            self.failure = failure
        }
    }

    public let device: DeviceConfig
    public private(set) var plan: ReadPlan
    let maxBackoff: Duration
    /// `DEVICE.TAG` for each tag, built once rather than every cycle.
    let sampleTags: [String]
    /// Per tag, whether a rule reads it: only those go to the pipeline (every tag is still read,
    /// as configured; the others would only be hashed and compared there, every cycle), and only
    /// their values need decoding.
    public let forwarded: [Bool]
    /// When the read in hand began; nil between reads.
    private var readSince: Instant?
    private var stopped = false
    /// The connection as last reported: nil before the first outcome.
    private var connected: Bool?
    private var failures = 0
    private var deadline: Instant?

    /// `ruleTags`: the tags a rule reads (nil: all).
    public init(device: DeviceConfig, ruleTags: Set<String>? = nil, maxBackoff: Duration = .seconds(10)) {
        self.device = device
        plan = ReadPlan(tags: device.tags, maxGap: device.maxGap, maxRegistersPerRead: device.maxRegistersPerRead)
        self.maxBackoff = maxBackoff
        sampleTags = device.tags.map(device.qualifiedName)
        forwarded = sampleTags.map { ruleTags?.contains($0) ?? true }
    }

    /// The poller starts: the first read is now.
    public mutating func start(at now: Instant) -> [Action] {
        deadline = now
        return tick(at: now)
    }

    /// The sleep asked for ended.
    public mutating func tick(at now: Instant) -> [Action] {
        guard !stopped else { return [] }
        readSince = now
        return [.read(plan)]
    }

    /// A read ended at `now`; `time` is when it began, the time of its samples.
    public mutating func read(_ reading: Reading, at now: Instant, time: Timestamp) -> [Action] {
        guard let since = readSince else { preconditionFailure("a reading the poller did not ask for") }
        readSince = nil
        var actions: [Action] = [.count(reading.requests, duration: since.duration(to: now))]
        for request in reading.isolated {
            plan = plan.isolating(request, tags: device.tags)
            actions.append(.log(.isolated(request)))
        }
        var samples = reading.values.compactMap {
            forwarded[$0.tag] ? Sample(tag: sampleTags[$0.tag], value: $0.value, time: time) : nil
        }
        var events: [Event] = []
        if let error = reading.failure {
            failures += 1
            if connected != false {
                actions.append(.log(.unreachable(error: error)))
                samples = sampleTags.indices.compactMap {
                    forwarded[$0] ? Sample(tag: sampleTags[$0], value: nil, time: time) : nil
                }
                events = [connectionChanged(false, error: error, time: time)]
                connected = false
            }
        } else {
            failures = 0
            if connected != true {
                if connected == false { actions.append(.log(.reachable)) }
                events = [connectionChanged(true, error: nil, time: time)]
                connected = true
            }
        }
        actions.append(.reportHealth(time: time, error: reading.failure))
        if !samples.isEmpty || !events.isEmpty { actions.append(.publish(samples: samples, events: events)) }
        guard !stopped else { return actions }
        let next: Instant
        if failures > 0 {
            next = now.advanced(by: backoff(failures: failures))
        } else {
            let due = (deadline ?? now).advanced(by: device.pollInterval)
            next = due < now ? now.advanced(by: device.pollInterval) : due  // skip, do not queue
        }
        deadline = next
        actions.append(.sleep(until: next))
        return actions
    }

    /// The poller stops: nothing more is read.
    public mutating func stop() {
        stopped = true
    }

    /// The wait after `failures` failed cycles in a row: one interval, doubling, at most `maxBackoff`.
    public func backoff(failures: Int) -> Duration {
        min(maxBackoff, device.pollInterval * (1 << min(max(failures, 1) - 1, 16)))
    }

    func connectionChanged(_ connected: Bool, error: String?, time: Timestamp) -> Event {
        Event(
            type: .deviceConnectionChanged, subject: device.name, time: time,
            data: [
                "device": .string(device.name), "connected": .bool(connected),
                "error": error.map { .string($0) } ?? .null,
            ])
    }
}

/// A poll cycle's Modbus requests by outcome, for `edge_modbus_requests_total{result}`.
public struct ModbusRequestCounts: Sendable, Equatable {
    public var ok = 0, exception = 0, timeout = 0, error = 0

    public init(ok: Int = 0, exception: Int = 0, timeout: Int = 0, error: Int = 0) {
        self.ok = ok
        self.exception = exception
        self.timeout = timeout
        self.error = error
    }

    /// The `result` label of each outcome that occurred, with its count.
    public var byName: [(String, Int)] {
        [("ok", ok), ("exception", exception), ("timeout", timeout), ("error", error)].filter { $0.1 > 0 }
    }
}
