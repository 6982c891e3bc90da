import Synchronization

/// The end of a thread the agent started around a C library (libmosquitto's network loop,
/// librdkafka's poll), which the one task closing its owner waits for. The wait holds through
/// cancellation: what the thread uses (the client, the callbacks' session) must outlive it.
///
/// Why the wait always ends: the thread calls `ended()` as its last act, whatever happened; a
/// waiter that comes after it finds `ended` and returns at once, one that comes before leaves its
/// continuation, which `ended()` resumes exactly once.
final class ThreadEnd: Sendable {
    private enum State {
        case running, ended
        case awaited(CheckedContinuation<Void, Never>)
    }

    private let state = Mutex(State.running)

    /// The thread's last act.
    func ended() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state = .ended }
            guard case let .awaited(continuation) = state else { return nil }
            return continuation
        }
        waiter?.resume()
    }

    /// Returns once the thread has ended. One caller.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ended = state.withLock { state -> Bool in
                guard case .running = state else { return true }
                state = .awaited(continuation)
                return false
            }
            if ended { continuation.resume() }
        }
    }
}
