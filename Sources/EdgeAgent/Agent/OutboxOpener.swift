import EdgeAgentCore
import Logging
import ServiceLifecycle
import Synchronization

/// Opens the agent's outbox before any stage starts, and waits while it cannot be opened for a
/// reason that is not damage (a full disk, an I/O error, a busy database; damage is quarantined
/// by the open itself). Nothing is polled meanwhile: no reading can be kept, and counters keep
/// the baselines stored in the outbox. The wait is a `ServiceGroup` of its own, so SIGTERM ends
/// it cleanly; systemd hears the agent is up (and its watchdog is fed), and `/readyz` answers
/// 503 with the reason.
///
/// | the open | then |
/// |---|---|
/// | succeeds | the writer is returned |
/// | fails with another agent on the folder, or a newer schema | thrown: waiting will not fix it |
/// | fails otherwise | logged once per distinct error, tried again after 1 s, doubling to 30 s |
/// | a stop comes while waiting | nil |
struct OutboxOpener {
    let options: OutboxOptions
    let logger: Logger
    let listen: HostPort?
    let systemd: SystemdNotifier

    func open() async throws -> OutboxWriter? {
        do {
            return try await OutboxWriter(options: options)
        } catch let error where Self.worthWaiting(error) {
            logger.error(
                "Cannot open the outbox; acquisition waits until it can be written.",
                metadata: ["error": "\(error)", "path": "\(options.databasePath)"])
            let attempts = Attempts(options: options, logger: logger, failure: "\(error)")
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: attempts, successTerminationBehavior: .gracefullyShutdownGroup)
            ]
            if let listen { services.append(.init(service: WaitingEndpoint(listen: listen, attempts: attempts))) }
            if let watchdog = SystemdWatchdog(notifier: systemd) { services.append(.init(service: watchdog)) }
            systemd.notify("READY=1\nSTATUS=waiting: the outbox cannot be written")
            var configuration = ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            configuration.maximumGracefulShutdownDuration = .seconds(7)
            configuration.maximumCancellationDuration = .seconds(2)
            try await ServiceGroup(configuration: configuration).run()
            return try attempts.result()
        }
    }

    static func worthWaiting(_ error: any Error) -> Bool {
        if error is CancellationError { return false }
        guard let error = error as? OutboxError else { return true }
        return error.code != .locked && error.code != .newerSchema
    }

    /// The retries, and what the last one found.
    final class Attempts: Service, Sendable {
        let options: OutboxOptions
        let logger: Logger
        private let state: Mutex<(writer: OutboxWriter?, failure: String?, fatal: (any Error)?)>

        init(options: OutboxOptions, logger: Logger, failure: String) {
            self.options = options
            self.logger = logger
            state = Mutex((nil, failure, nil))
        }

        var failure: String? { state.withLock { $0.failure } }

        func result() throws -> OutboxWriter? {
            try state.withLock {
                if let fatal = $0.fatal { throw fatal }
                return $0.writer
            }
        }

        func run() async throws {
            var delay = Duration.seconds(1)
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                let wait = delay
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                delay = min(delay * 2, .seconds(30))
                do {
                    let writer = try await OutboxWriter(options: options)
                    // A stop that came while it opened wins: the agent does not start.
                    if Task.isShuttingDownGracefully || Task.isCancelled {
                        await writer.close()
                        return
                    }
                    state.withLock { $0 = (writer, nil, nil) }
                    logger.notice("The outbox can be written again; the agent starts.")
                    return
                } catch let error where OutboxOpener.worthWaiting(error) {
                    let failure = "\(error)"
                    let changed = state.withLock { state in
                        defer { state.failure = failure }
                        return state.failure != failure
                    }
                    if changed {
                        logger.error("Cannot open the outbox; still waiting.", metadata: ["error": "\(failure)"])
                    }
                } catch {
                    state.withLock { $0.fatal = error }
                    return
                }
            }
        }
    }

    /// `/healthz` and `/readyz` while the agent waits for its outbox; nothing else is there yet.
    struct WaitingEndpoint: Service {
        let listen: HostPort
        let attempts: Attempts

        /// A port that cannot be bound does not end the wait: the agent waits without the page.
        func run() async throws {
            guard
                let server = try? await SmallHTTPServer(
                    listen: listen,
                    handler: { [attempts] request in
                        switch request.path {
                        case "/healthz": return .init(.ok, "ok\n")
                        default:
                            return .init(
                                .serviceUnavailable,
                                "outbox cannot be written: \(attempts.failure ?? "opening"); acquisition waits\n")
                        }
                    })
            else {
                try? await gracefulShutdown()
                return
            }
            try? await gracefulShutdown()
            await server.close()
        }
    }
}
