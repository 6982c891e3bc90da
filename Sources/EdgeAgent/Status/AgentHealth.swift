import EdgeAgentCore
import Foundation
import Logging
import Synchronization

/// What the stages tell the status page and `/readyz`: the outbox's state, each device's polls,
/// each machine's state and today's counts, each sink's health, the recent warnings.
public final class AgentHealth: Sendable {
    public struct Outbox: Sendable {
        public var createdReason: String?
        public var quarantinedTo: String?
        /// Appends refused because only undelivered critical events are left: acquisition paused.
        public var full = false
        public var appendError: String?
    }

    public typealias Device = DeviceHealth
    public typealias Machine = MachineHealth
    public typealias Counting = CountingDay
    public typealias Warning = HealthWarning

    let outbox: Mutex<Outbox>
    let devices = Mutex<[String: Device]>([:])
    let sinks = Mutex<[SinkHealth]>([])
    let rules = Mutex(RuleState())
    /// Today's window and the good and scrap counted in it, by machine.
    struct Today {
        var window: Counting
        var counts: [String: (good: Int64, scrap: Int64)] = [:]
    }
    let today: Mutex<Today>
    let warnings = Mutex<[Warning]>([])
    static let keptWarnings = 20

    public init(report: OutboxDatabase.OpenReport, now: Timestamp = .now()) {
        outbox = Mutex(Outbox(createdReason: report.createdReason, quarantinedTo: report.quarantinedTo))
        today = Mutex(Today(window: Counting.day(of: now, since: now)))
    }

    func updateOutbox(_ body: (inout Outbox) -> Void) { outbox.withLock { body(&$0) } }

    /// A poll's outcome: `error` nil when the device answered.
    func polled(_ name: String, at time: Timestamp, error: String?) {
        devices.withLock {
            var device = $0[name] ?? Device()
            device.connected = error == nil
            device.error = error
            device.lastPoll = time
            if error != nil { device.failedPolls += 1 }
            $0[name] = device
        }
    }

    public func add(_ sink: SinkHealth) { sinks.withLock { $0.append(sink) } }

    /// What a commit changed, kept as cheaply as the pipeline can afford per reading: the rule
    /// state itself (copy-on-write, so a reference) and today's good and scrap from its events.
    /// The status page derives its machine rows from them when it is asked (`machineRows`).
    func committed(_ state: RuleState, events: [Event], now: Timestamp = .now()) {
        rules.withLock { $0 = state }
        // The calendar is asked once a day, not per commit.
        today.withLock { today in
            if now.milliseconds >= today.window.until.milliseconds {
                today = Today(window: .day(of: now))
            }
            let window = today.window
            for event in events where event.type == .productionCompleted || event.type == .productionScrapped {
                guard event.time.milliseconds >= window.from.milliseconds,
                    event.time.milliseconds < window.until.milliseconds,
                    case let .int(quantity)? = event.data["quantity"]
                else { continue }
                if event.type == .productionCompleted {
                    today.counts[event.subject, default: (0, 0)].good += quantity
                } else {
                    today.counts[event.subject, default: (0, 0)].scrap += quantity
                }
            }
        }
    }

    /// Each machine as the rules last committed it, with today's counts.
    func machineRows() -> [String: Machine] {
        let state = rules.withLock { $0 }
        let counts = today.withLock { $0.counts }
        var rows: [String: Machine] = [:]
        for (name, stored) in state.machines {
            var machine = Machine()
            machine.state = stored.state
            machine.since = stored.since
            machine.downtime = stored.downtime
            machine.workOrder = stored.workOrder?.id
            machine.openExceptions = stored.checks.filter(\.value.raised).keys.sorted()
            rows[name] = machine
        }
        for (name, count) in counts {
            (rows[name, default: Machine()].good, rows[name, default: Machine()].scrap) = count
        }
        return rows
    }

    func warned(_ level: HealthWarning.Level, _ message: String, at time: Timestamp = .now()) {
        warnings.withLock {
            $0.append(Warning(time: time, level: level, message: message))
            if $0.count > Self.keptWarnings { $0.removeFirst($0.count - Self.keptWarnings) }
        }
    }

    /// Ready unless a sink refuses the agent (401/403/404) or the outbox cannot be written.
    public func readiness() -> (ready: Bool, reasons: [String]) {
        var reasons: [String] = []
        let box = outbox.withLock { $0 }
        if box.full { reasons.append("outbox full of undelivered critical events: acquisition paused") }
        if let error = box.appendError { reasons.append("outbox cannot be written: \(error)") }
        for sink in sinks.withLock({ $0 }) {
            let snapshot = sink.snapshot
            if let problem = snapshot.misconfigured {
                reasons.append("sink \(sink.name) refuses the agent (\(problem)): check its URL and credentials")
            }
            if let problem = snapshot.outboxError {
                reasons.append("sink \(sink.name) cannot read or settle the outbox: \(problem)")
            }
        }
        return (reasons.isEmpty, reasons)
    }

    /// What happened that does not stop the agent but an operator must hear about.
    public func notes() -> [String] {
        let box = outbox.withLock { $0 }
        return box.quarantinedTo.map {
            ["the outbox failed its integrity check at start and was moved to \($0); a new one was started"]
        } ?? []
    }
}

/// Tees warnings and errors into `AgentHealth`'s recent list, for the status page.
struct RecentWarningsLogHandler: LogHandler {
    let health: AgentHealth
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard let level = HealthWarning.Level(event.level) else { return }
        let details = (metadata.merging(event.metadata ?? [:]) { $1 }).sorted { $0.key < $1.key }.map {
            "\($0.key)=\($0.value)"
        }
        health.warned(level, ([event.message.description] + details).joined(separator: " "))
    }
}

extension HealthWarning.Level {
    /// A log record's level as the status page lists it; nil below a warning.
    init?(_ level: Logger.Level) {
        switch level {
        case .warning: self = .warning
        case .error: self = .error
        case .critical: self = .critical
        default: return nil
        }
    }
}
