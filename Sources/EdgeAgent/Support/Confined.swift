import NIOPosix

/// A value that lives on one dedicated thread. SQLite and libmodbus calls block; they run
/// here, never on Swift's cooperative pool (two threads on this machine).
///
/// `@unchecked Sendable` is safe: `value` is touched only inside `run`, and every `run`
/// executes on the pool's single thread, one after another.
public final class Confined<Value>: @unchecked Sendable {
    private let pool: NIOThreadPool
    private let value: Value

    public init(_ value: Value) {
        self.value = value
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    public func run<R: Sendable>(_ body: @escaping @Sendable (Value) throws -> R) async throws -> R {
        try await pool.runIfActive { try body(self.value) }
    }

    /// Stops the thread after the work already queued.
    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    deinit { pool.shutdownGracefully { _ in } }
}
