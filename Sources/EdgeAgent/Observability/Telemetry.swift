import EdgeAgentCore
import Metrics

/// Every metric the agent emits (SPEC 6), named in one place. Through swift-metrics: the `run`
/// command bootstraps Prometheus; elsewhere (tests, the demo) these are no-ops.
public enum Telemetry {
    static func appended(_ events: [Event]) {
        var byType: [String: Int] = [:]
        for event in events { byType[event.type.name, default: 0] += 1 }
        for (type, n) in byType {
            Counter(label: "edge_events_appended_total", dimensions: [("type", type)]).increment(by: n)
        }
    }

    static func delivered(sink: String, _ events: ArraySlice<StoredEvent>, at now: Timestamp) {
        Counter(label: "edge_sink_delivered_total", dimensions: [("sink", sink)]).increment(by: events.count)
        let latency = Timer(label: "edge_delivery_latency_seconds", dimensions: [("sink", sink)])
        for event in events { latency.recordMilliseconds(max(0, now.milliseconds - event.time.milliseconds)) }
    }

    static func failed(sink: String, reason: FailureReason) {
        Counter(label: "edge_sink_failures_total", dimensions: [("sink", sink), ("reason", reason.rawValue)])
            .increment()
    }

    static func historianFile(source: String, result: String) {
        Counter(label: "edge_historian_files_total", dimensions: [("source", source), ("result", result)]).increment()
    }

    /// A device's Modbus metrics, each made on its first use and kept by the device's poller: a
    /// cycle records them without the factory's lookup by label and dimensions.
    struct Modbus {
        let device: String
        private var requests: [String: Counter] = [:]
        private var pollDuration: Timer?

        init(device: String) { self.device = device }

        mutating func record(_ results: ModbusRequestCounts, duration: Duration) {
            for (result, n) in results.byName {
                if let counter = requests[result] {
                    counter.increment(by: n)
                } else {
                    let counter = Counter(
                        label: "edge_modbus_requests_total", dimensions: [("device", device), ("result", result)])
                    requests[result] = counter
                    counter.increment(by: n)
                }
            }
            let timer =
                pollDuration ?? Timer(label: "edge_modbus_poll_duration_seconds", dimensions: [("device", device)])
            pollDuration = timer
            timer.record(duration: duration)
        }
    }

    /// Outbox gauges, refreshed when `/metrics` is scraped.
    static func outbox(_ status: OutboxStatus) {
        Gauge(label: "edge_outbox_bytes").record(status.outbox_bytes)
        for (sink, s) in status.sinks {
            Gauge(label: "edge_outbox_pending_events", dimensions: [("sink", sink)]).record(s.pending)
            Gauge(label: "edge_outbox_oldest_pending_age_seconds", dimensions: [("sink", sink)]).record(
                s.oldest_pending_age_s ?? 0)
            Gauge(label: "edge_outbox_dead_events", dimensions: [("sink", sink)]).record(s.dead)
        }
    }
}
