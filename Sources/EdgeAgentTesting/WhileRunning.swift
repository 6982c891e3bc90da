import Logging
import ServiceLifecycle

/// Runs `services` in one group while `body` runs, then stops them as a SIGTERM would and waits
/// until each has ended: a test sees what they did once they are all stopped.
public func whileRunning<T: Sendable>(
    _ services: [any Service], logger: Logger = Logger(label: "test"), _ body: () async throws -> T
) async throws -> T {
    let group = ServiceGroup(services: services, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result = try await body()
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}
