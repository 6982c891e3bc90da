import Logging
import ServiceLifecycle

/// Purges delivered events past `retain_delivered`, every `interval`.
struct OutboxMaintenance: Service {
    let writer: OutboxWriter
    let logger: Logger
    var interval: Duration = .seconds(60)

    func run() async throws {
        try await untilGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let purged = try await writer.purgeRetained()
                    if purged > 0 {
                        logger.debug("Purged delivered events past retention.", metadata: ["count": "\(purged)"])
                    }
                } catch {
                    logger.error("Could not purge delivered events.", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
