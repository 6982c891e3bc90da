import AsyncAlgorithms
import EdgeAgentCore

/// What an input hands the pipeline: readings (samples, in time order; one time is one reading),
/// events the input decides itself (`device.connection.changed`), and state to store with them
/// (a file's progress, its record once done).
public struct Signal: Sendable {
    public var samples: [Sample]
    public var events: [Event]
    public var state: [StateRow]
    public var file: FileRecord?
    /// For an input that must not lose a reading (a historian file): told `true` once the signal
    /// is committed, `false` when a full outbox refused it or the agent stops (send it again).
    /// A Modbus reading has none: the next poll reads the same registers.
    public var committed: (@Sendable (Bool) -> Void)?
    /// The pipeline's own tick: wall-clock time passes, with or without readings (`Pipeline.tick`).
    var isTick = false

    public init(
        samples: [Sample] = [], events: [Event] = [], state: [StateRow] = [],
        file: FileRecord? = nil, committed: (@Sendable (Bool) -> Void)? = nil
    ) {
        self.samples = samples
        self.events = events
        self.state = state
        self.file = file
        self.committed = committed
    }

    static var tick: Signal {
        var signal = Signal()
        signal.isTick = true
        return signal
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
