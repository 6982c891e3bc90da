import NIOPosix

/// A value that lives on one dedicated thread. SQLite and libmodbus calls block; they run
/// here, never on Swift's cooperative pool (two threads on this machine).
///
/// `@unchecked Sendable` is safe: `value` is written once, on the pool's thread, before any
/// initialiser returns (`init(opening:)` awaits that write), and read only inside `run`, whose
/// bodies all execute on the pool's single thread, one after another.
public final class Confined<Value>: @unchecked Sendable {
    private let pool: NIOThreadPool
    private var value: Value?

    public init(_ value: Value) {
        self.value = value
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Builds the value on its own thread: opening a database or a serial port blocks too.
    public init(opening make: @escaping @Sendable () throws -> Value) async throws {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do {
            try await pool.runIfActive { self.value = try make() }
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
    }

    public func run<R: Sendable>(_ body: @escaping @Sendable (Value) throws -> R) async throws -> R {
        try await pool.runIfActive { try body(self.value!) }
    }

    /// Queues `body` and returns at once; the caller takes its result later. Unlike `run`'s, the
    /// job runs even if the caller is cancelled before it starts: for work whose record must not
    /// be lost, and work a caller does beside its own without a task for it.
    public func start<R: Sendable>(_ body: @escaping @Sendable (Value) throws -> R) -> Pending<R> {
        let pending = Pending<R>()
        pool.submit { state in
            guard case .active = state else { return pending.finish(.failure(NIOThreadPoolError.ThreadPoolInactive())) }
            pending.finish(Result { try body(self.value!) })
        }
        return pending
    }

    /// Stops the thread once the job under way ends. Jobs still queued do not run: `run` throws,
    /// and `start`'s result is a failure.
    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    deinit { pool.shutdownGracefully { _ in } }
}
