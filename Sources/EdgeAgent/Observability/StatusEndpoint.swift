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

    public init(listen: HostPort, registry: PrometheusCollectorRegistry, health: AgentHealth, config: AgentConfig, logger: Logger) {
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
            switch request.path.split(separator: "?").first.map(String.init) ?? "/" {
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
                return .init(.ok, String(decoding: bytes, as: UTF8.self), contentType: "text/plain; version=0.0.4; charset=utf-8")
            case "/":
                let status = try? await reader.run { try $0.status() }
                return .init(.ok, page(status))
            default:
                return .init(.notFound, "not found: try /, /healthz, /readyz or /metrics\n")
            }
        }
        logger.info("Status endpoint listening.", metadata: ["listen": "\(listen.host):\(server.port)"])
        try? await gracefulShutdown()
        await server.close()
        await reader.shutdown()
    }

    /// The status page: what an operator asks first.
    func page(_ status: OutboxStatus?) -> String {
        let (ready, reasons) = health.readiness()
        let outbox = health.outbox.withLock { $0 }
        var lines = ["edge-agent \(config.agent.id)  \(config.source)", "ready: \(ready ? "yes" : "no")"]
        lines += reasons.map { "  - \($0)" }
        if let reason = outbox.createdReason { lines.append("outbox: started new at this start (\(reason))") }
        if let moved = outbox.quarantinedTo { lines.append("outbox: a damaged database was moved to \(moved)") }
        if let status {
            lines.append("outbox: \(status.outbox_bytes) bytes on disk")
            for name in status.sinks.keys.sorted() {
                let s = status.sinks[name]!
                lines.append("sink \(name): pending \(s.pending), oldest \(s.oldest_pending_age_s.map { String(format: "%.1fs", $0) } ?? "-"), "
                    + "delivered \(s.delivered), dead \(s.dead)")
            }
        }
        for (name, device) in health.devices.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            lines.append("device \(name): " + (device.connected == true ? "connected" : "DISCONNECTED \(device.error ?? "")"))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
