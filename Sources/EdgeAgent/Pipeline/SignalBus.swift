import EdgeAgentCore
import Synchronization

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

/// Inputs to pipeline: a queue in order of arrival, from which the pipeline takes one signal at a
/// time. A sender waits until its signal is taken (back-pressure instead of an unbounded queue):
/// a task in `send`, a thread that cannot wait there through `post`, which returns at once and
/// says when the signal is taken. Iterating it is receiving: one receiver at a time.
///
/// A signal that arrives while the pipeline waits resumes it directly, and one that arrives while
/// it works is taken without a wait: nothing runs between a sender and the pipeline.
public final class SignalBus: AsyncSequence, Sendable {
    private struct Entry {
        var id: Int
        var signal: Signal
        var taken: @Sendable () -> Void
    }

    private struct State {
        var queue: [Entry] = []
        /// The receiver waiting for the next signal.
        var receiver: UnsafeContinuation<Signal?, Never>?
        var finished = false
        /// The last id given to a `send`: a cancelled send finds its signal in the queue by it.
        var lastID = 0
    }

    private enum Arrival {
        case queued
        case received(UnsafeContinuation<Signal?, Never>)
        case dropped
    }

    private let state = Mutex(State())

    public init() {}

    /// Hands `signal` over and waits until the pipeline took it. Returns without handing it over
    /// when the bus is finished, or when the task is cancelled before the pipeline took it (an
    /// input that sends again after a cancellation: ticks, a historian file).
    public func send(_ signal: Signal) async {
        let id = state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (sender: UnsafeContinuation<Void, Never>) in
                arrive(Entry(id: id, signal: signal) { sender.resume() }, unlessCancelled: true)
            }
        } onCancel: {
            let entry = state.withLock { state in
                state.queue.firstIndex(where: { $0.id == id }).map { state.queue.remove(at: $0) }
            }
            entry?.taken()
        }
    }

    /// Hands `signal` over and waits until the pipeline took it, or until the bus is finished; a
    /// cancellation does not end the wait. For an input whose reading in hand must reach the
    /// pipeline even at a stop (a Modbus reading, as `DevicePoller.Handover`).
    func deliver(_ signal: Signal) async {
        await withUnsafeContinuation { (sender: UnsafeContinuation<Void, Never>) in
            post(signal) { sender.resume() }
        }
    }

    /// Hands `signal` over without waiting, for a sender on a thread of its own: `taken` runs once
    /// the pipeline took it, or once the bus dropped it (finished).
    func post(_ signal: Signal, taken: @escaping @Sendable () -> Void) {
        arrive(Entry(id: 0, signal: signal, taken: taken))
    }

    /// Queues `entry`, or gives it to the waiting receiver. `unlessCancelled`: dropped when the
    /// calling task is cancelled. That is read under the lock, as the cancellation handler takes
    /// the entry out of the queue under it: a cancellation is seen by one or the other.
    private func arrive(_ entry: Entry, unlessCancelled: Bool = false) {
        let arrival = state.withLock { state -> Arrival in
            if state.finished || (unlessCancelled && Task.isCancelled) { return .dropped }
            guard let receiver = state.receiver else {
                state.queue.append(entry)
                return .queued
            }
            state.receiver = nil
            return .received(receiver)
        }
        switch arrival {
        case .queued: return
        case let .received(receiver): receiver.resume(returning: entry.signal)
        case .dropped: break
        }
        entry.taken()
    }

    /// The next signal, in order of arrival; nil once the bus is finished or the task cancelled.
    func receive() async -> Signal? {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (receiver: UnsafeContinuation<Signal?, Never>) in
                let first = state.withLock { state -> Entry?? in
                    if state.finished || Task.isCancelled { return .some(nil) }
                    guard state.queue.isEmpty else { return state.queue.removeFirst() }
                    precondition(state.receiver == nil, "one receiver at a time")
                    state.receiver = receiver
                    return nil
                }
                guard let first else { return }
                receiver.resume(returning: first?.signal)
                first?.taken()
            }
        } onCancel: {
            let receiver = state.withLock { state in
                defer { state.receiver = nil }
                return state.receiver
            }
            receiver?.resume(returning: nil)
        }
    }

    /// Ends the receiving: the signals not taken are dropped, and their senders told.
    public func finish() {
        let (receiver, dropped) = state.withLock { state in
            defer { (state.finished, state.receiver, state.queue) = (true, nil, []) }
            return (state.receiver, state.queue)
        }
        receiver?.resume(returning: nil)
        for entry in dropped { entry.taken() }
    }

    /// What waits on the bus: signals queued, a receiver (tests).
    var waiting: (signals: Int, receiver: Bool) {
        state.withLock { ($0.queue.count, $0.receiver != nil) }
    }

    public func makeAsyncIterator() -> Iterator { Iterator(bus: self) }

    public struct Iterator: AsyncIteratorProtocol {
        let bus: SignalBus

        public mutating func next() async -> Signal? { await bus.receive() }
    }
}
