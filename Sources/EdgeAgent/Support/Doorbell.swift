import Synchronization

/// Wakes whoever waits for something to happen: the outbox writer rings it after each commit of
/// events, and the forwarders and the start's page release wait for it. It lives beside the other
/// concurrency tools so that the outbox knows nothing of who listens.
public final class Doorbell: Sendable {
    private let listeners = Mutex<[AsyncStream<Void>.Continuation]>([])

    public init() {}

    /// A stream that yields (at most one pending ring) after each `ring()`, and the continuation
    /// that rings this subscriber alone (a forwarder's own idle tick wakes no other forwarder).
    public func subscribe() -> (stream: AsyncStream<Void>, own: AsyncStream<Void>.Continuation) {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        listeners.withLock { $0.append(continuation) }
        return (stream, continuation)
    }

    public func ring() {
        for listener in listeners.withLock({ $0 }) { listener.yield() }
    }
}
