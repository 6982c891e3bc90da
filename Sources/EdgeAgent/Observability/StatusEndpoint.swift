import EdgeAgentCore
import Foundation
import Logging
import Prometheus
import ServiceLifecycle

/// `agent.http.listen`: `/` (a status page), `/healthz`, `/readyz` and `/metrics` (SPEC 6).
public final class StatusEndpoint: Service {
    let listen: HostPort
    let registry: PrometheusCollectorRegistry
    let health: AgentHealth
    let config: AgentConfig
    let logger: Logger

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
                let snapshot = self.snapshot(try? await reader.run { try $0.status() })
                if StatusPage.wantsHTML(accept: request.accept, query: parts.count > 1 ? parts[1] : nil) {
                    return .init(.ok, StatusPage.html(snapshot), contentType: "text/html; charset=utf-8")
                }
                return .init(.ok, StatusPage.text(snapshot))
            default:
                return .init(.notFound, "not found: try /, /healthz, /readyz or /metrics\n")
            }
        }
        logger.info("Status endpoint listening.", metadata: ["listen": "\(listen.host):\(server.port)"])
        try? await gracefulShutdown()
        await server.close()
        await reader.shutdown()
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
            warnings: health.warnings.withLock { $0 })
    }
}
