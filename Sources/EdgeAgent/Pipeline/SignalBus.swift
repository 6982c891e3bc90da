import AsyncAlgorithms

/// What an input hands the pipeline: one reading (samples with one time), events the input
/// decides itself (`device.connection.changed`), and state to store with them (a file checkpoint).
public struct Signal: Sendable {
    public var samples: [Sample]
    public var events: [Event]
    public var state: [(key: String, value: String)]

    public init(samples: [Sample] = [], events: [Event] = [], state: [(key: String, value: String)] = []) {
        self.samples = samples
        self.events = events
        self.state = state
    }
}

/// Inputs to pipeline: an `AsyncChannel`, so a sender waits while the pipeline is busy or
/// paused (back-pressure instead of an unbounded queue). Iterating it is receiving.
public final class SignalBus: AsyncSequence, Sendable {
    private let channel = AsyncChannel<Signal>()

    public init() {}

    public func send(_ signal: Signal) async { await channel.send(signal) }

    public func finish() { channel.finish() }

    public func makeAsyncIterator() -> AsyncChannel<Signal>.Iterator { channel.makeAsyncIterator() }
}
