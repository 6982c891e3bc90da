import Synchronization

/// What the stages tell the status page and `/readyz`: the outbox's state, each device's
/// connection, each sink's health.
public final class AgentHealth: Sendable {
    public struct Outbox: Sendable {
        public var createdReason: String?
        public var quarantinedTo: String?
        /// Appends refused because only undelivered critical events are left: acquisition paused.
        public var full = false
        public var appendError: String?
    }

    public struct Device: Sendable {
        public var connected: Bool?
        public var error: String?
    }

    let outbox: Mutex<Outbox>
    let devices = Mutex<[String: Device]>([:])
    let sinks = Mutex<[SinkHealth]>([])

    public init(report: OutboxDatabase.OpenReport) {
        outbox = Mutex(Outbox(createdReason: report.createdReason, quarantinedTo: report.quarantinedTo))
    }

    func updateOutbox(_ body: (inout Outbox) -> Void) { outbox.withLock { body(&$0) } }

    func device(_ name: String, connected: Bool, error: String?) {
        devices.withLock { $0[name] = Device(connected: connected, error: error) }
    }

    public func add(_ sink: SinkHealth) { sinks.withLock { $0.append(sink) } }

    /// Ready unless a sink refuses the agent (401/403/404) or the outbox cannot be written.
    public func readiness() -> (ready: Bool, reasons: [String]) {
        var reasons: [String] = []
        let box = outbox.withLock { $0 }
        if box.full { reasons.append("outbox full of undelivered critical events: acquisition paused") }
        if let error = box.appendError { reasons.append("outbox cannot be written: \(error)") }
        for sink in sinks.withLock({ $0 }) {
            let snapshot = sink.snapshot
            if let problem = snapshot.misconfigured { reasons.append("sink \(sink.name) refuses the agent (\(problem)): check its URL and credentials") }
            if let problem = snapshot.outboxError { reasons.append("sink \(sink.name) cannot read or settle the outbox: \(problem)") }
        }
        return (reasons.isEmpty, reasons)
    }

    /// What happened that does not stop the agent but an operator must hear about.
    public func notes() -> [String] {
        let box = outbox.withLock { $0 }
        return box.quarantinedTo.map { ["the outbox failed its integrity check at start and was moved to \($0); a new one was started"] } ?? []
    }
}
