import EdgeAgentCore
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// `agent.http.listen`: `/` (a status page), `/healthz`, `/readyz` and `/metrics` (SPEC 6).
public final class StatusEndpoint: Service {
    let listen: HostPort
    let registry: PrometheusCollectorRegistry
    let health: AgentHealth
    let config: AgentConfig
    let logger: Logger
    /// Each sink's last hour, sampled every `sampleEvery`.
    let backlog = Mutex<[String: BacklogHistory]>([:])
    let sampleEvery: Duration = .seconds(2)
    /// What the timeline read so far; used on the reader's thread only.
    let timelineCache = Mutex(TimelineCache())

    public init(
        listen: HostPort, registry: PrometheusCollectorRegistry, health: AgentHealth, config: AgentConfig,
        logger: Logger
    ) {
        self.listen = listen
        self.registry = registry
        self.health = health
        self.config = config
        self.logger = logger
    }

    public func run() async throws {
        let options = config.outboxOptions
        let reader = try await Confined(opening: { try OutboxDatabase.openExisting(options) })
        let server = try await SmallHTTPServer(listen: listen) { [self] request in
            guard request.method == .GET else { return .init(.methodNotAllowed, "GET only\n") }
            let parts = request.path.split(separator: "?", maxSplits: 1).map(String.init)
            switch parts.first ?? "/" {
            case "/healthz":
                return .init(.ok, "ok\n")
            case "/readyz":
                let (ready, reasons) = health.readiness()
                let lines = (ready ? ["ready"] : reasons) + health.notes().map { "note: \($0)" }
                return .init(ready ? .ok : .serviceUnavailable, lines.map { $0 + "\n" }.joined())
            case "/metrics":
                if let status = try? await reader.run({ try $0.status() }) { Telemetry.outbox(status) }
                var bytes: [UInt8] = []
                registry.emit(into: &bytes)
                return .init(
                    .ok, String(decoding: bytes, as: UTF8.self), contentType: "text/plain; version=0.0.4; charset=utf-8"
                )
            case "/":
                var snapshot = self.snapshot(try? await reader.run { try $0.status() })
                if StatusPage.wantsHTML(accept: request.accept, query: parts.count > 1 ? parts[1] : nil) {
                    let now = snapshot.now
                    snapshot.timeline = try? await reader.run { try self.timeline($0, now: now) }
                    return .init(.ok, StatusPage.html(snapshot), contentType: "text/html; charset=utf-8")
                }
                return .init(.ok, StatusPage.text(snapshot))
            default:
                return .init(.notFound, "not found: try /, /healthz, /readyz or /metrics\n")
            }
        }
        logger.info("Status endpoint listening.", metadata: ["listen": "\(listen.host):\(server.port)"])
        let sampler = Task { [self] in
            // The first read of a long outbox takes the longest: done before a technician asks.
            _ = try? await reader.run { [self] in try timeline($0, now: .now()) }
            // Counting a large backlog takes long: the sampler then waits twenty times as long as
            // its count took, so it never takes more than a twentieth of a core from the drain.
            let clock = ContinuousClock()
            while !Task.isCancelled {
                let started = clock.now
                if let status = try? await reader.run({ try $0.status() }) { sample(status) }
                try? await Task.sleep(for: max(sampleEvery, (clock.now - started) * 20))
            }
        }
        try? await gracefulShutdown()
        sampler.cancel()
        await sampler.value
        await server.close()
        await reader.shutdown()
    }

    /// The timeline's records, reading only what was appended since the last page.
    func timeline(_ db: OutboxDatabase, now: Timestamp) throws -> TimelineRecords {
        var cache = timelineCache.withLock { $0 }
        defer { timelineCache.withLock { $0 = cache } }
        return try db.timeline(now: now, cache: &cache)
    }

    /// Adds each sink's backlog now to its last hour.
    func sample(_ status: OutboxStatus) {
        let now = Timestamp.now()
        let sinks = health.sinks.withLock { $0 }
        backlog.withLock { histories in
            for sink in config.sinks {
                guard let status = status.sinks[sink.name] else { continue }
                let h = sinks.first { $0.name == sink.name }?.snapshot ?? .init()
                histories[sink.name, default: BacklogHistory()].add(
                    .init(
                        at: now, pending: status.pending, delivered: status.delivered,
                        failing: h.failing != nil || h.misconfigured != nil || h.outboxError != nil))
            }
        }
    }

    /// What the status page shows now: what an operator asks first.
    func snapshot(_ status: OutboxStatus?) -> StatusSnapshot {
        let (ready, reasons) = health.readiness()
        let outbox = health.outbox.withLock { $0 }
        let devices = health.devices.withLock { $0 }
        let machines = health.machineRows()
        let sinks = health.sinks.withLock { $0 }
        return StatusSnapshot(
            agent: config.agent.id, source: config.source, now: .now(), ready: ready, reasons: reasons,
            notes: health.notes(),
            outboxBytes: status?.outbox_bytes, outboxMaxSize: config.outbox.maxSize,
            outboxCreated: outbox.createdReason,
            quarantinedTo: outbox.quarantinedTo,
            devices: config.devices.map {
                .init(name: $0.name, endpoint: "\($0.transport)", health: devices[$0.name] ?? .init())
            },
            machines: config.machines.map { ($0.name, machines[$0.name] ?? .init()) },
            counting: health.today.withLock { $0.window },
            sinks: config.sinks.map { sink in
                .init(
                    name: sink.name, status: status?.sinks[sink.name],
                    health: sinks.first { $0.name == sink.name }?.snapshot ?? .init())
            },
            warnings: health.warnings.withLock { $0 },
            downtimeStates: Dictionary(
                config.machines.map { ($0.name, Set($0.state?.downtime ?? [])) }, uniquingKeysWith: { a, _ in a }),
            backlog: backlog.withLock { $0 }, clock: .local)
    }
}
