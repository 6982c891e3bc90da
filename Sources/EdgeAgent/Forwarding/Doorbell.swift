import Synchronization

/// Wakes the forwarders when the writer has committed new events.
public final class Doorbell: Sendable {
    private let listeners = Mutex<[AsyncStream<Void>.Continuation]>([])

    public init() {}

    /// A stream that yields (at most one pending ring) after each `ring()`.
    public func subscribe() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        listeners.withLock { $0.append(continuation) }
        return stream
    }

    public func ring() {
        for listener in listeners.withLock({ $0 }) { listener.yield() }
    }
}
