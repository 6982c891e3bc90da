import Synchronization

/// A state that a C library's callbacks change on the library's own thread (libmosquitto's
/// network loop, librdkafka's poll thread), and the one task that waits for it to reach a
/// condition (a batch's acknowledgements, its delivery reports). `update` changes it and rings;
/// `wait` looks again after each ring, until the condition holds, a deadline passes or the task
/// is cancelled. A ring with nobody waiting is kept for the next wait; a cancelled wait ends at
/// once and a later one suspends again, so a stop never leaves a loop that does not suspend (as a
/// finished `AsyncStream` would). One task waits at a time (a forwarder delivers one batch at a time).
///
/// `@unchecked Sendable` is safe: the only stored values are the two `Mutex`es; the sinks'
/// subclasses add only `let` properties of `Sendable` types.
class Watched<State>: @unchecked Sendable {
    let state: Mutex<State>
    /// The one task waiting for a change, or a ring that came while none waited.
    private let bell = Mutex(Bell.quiet)

    private enum Bell {
        case quiet, rung
        case waiting(CheckedContinuation<Void, Never>)
    }

    init(_ initial: sending State) {
        state = Mutex(initial)
    }

    func update(_ body: (inout State) -> Void) {
        state.withLock { body(&$0) }
        poke()
    }

    /// Wakes the waiting task; a ring with none waiting is kept for the next wait.
    func poke() {
        let waiter = bell.withLock { bell -> CheckedContinuation<Void, Never>? in
            guard case let .waiting(continuation) = bell else {
                bell = .rung
                return nil
            }
            bell = .quiet
            return continuation
        }
        waiter?.resume()
    }

    /// Returns after a ring since the last wait, or at once when the task is cancelled.
    private func nextChange() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = bell.withLock { bell -> Bool in
                    if case .rung = bell {
                        bell = .quiet
                        return true
                    }
                    if Task.isCancelled { return true }
                    bell = .waiting(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            poke()
        }
    }

    /// Waits until `done` holds, the deadline passes or the task is cancelled; returns `done`'s last answer.
    @discardableResult
    func wait(until deadline: ContinuousClock.Instant, for done: (State) -> Bool) async -> Bool {
        let timer = Task {
            guard (try? await Task.sleep(until: deadline)) != nil else { return }
            poke()
        }
        defer { timer.cancel() }
        while true {
            if state.withLock({ done($0) }) { return true }
            if Task.isCancelled || ContinuousClock.now >= deadline { return false }
            await nextChange()
        }
    }
}
