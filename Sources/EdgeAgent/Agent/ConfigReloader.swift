import EdgeAgentCore
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// SIGHUP: reads the configuration file again. A bad one is refused and the running one kept;
/// a good one ends this service, which stops the group cleanly so the agent restarts on it.
final class ConfigReloader: Service, Sendable {
    let path: String
    let logger: Logger
    private let accepted = Mutex<AgentConfig?>(nil)

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    var newConfig: AgentConfig? { accepted.withLock { $0 } }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                let config = try ConfigLoader.load(path: path)
                accepted.withLock { $0 = config }
                logger.notice("Configuration reloaded; restarting the stages on it.")
                return
            } catch let error as ConfigError {
                logger.error("New configuration refused; the running one is kept.", metadata: ["issues": "\(error)"])
            }
        }
    }
}
