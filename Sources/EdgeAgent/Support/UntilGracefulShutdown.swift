import ServiceLifecycle

/// Runs `body` until it ends or graceful shutdown cancels it; the cancellation that shutdown
/// causes is a clean stop, not a failure of the service.
package func untilGracefulShutdown(_ body: @escaping @Sendable () async throws -> Void) async throws {
    do {
        try await cancelWhenGracefulShutdown(body)
    } catch is CancellationError where Task.isShuttingDownGracefully {
    }
}
