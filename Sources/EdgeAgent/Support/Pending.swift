import Synchronization

/// The result of a job started on a thread of its own (`Confined.start`), taken when the caller
/// needs it: the caller goes on meanwhile without a task of its own for the wait.
///
/// One caller takes the value, once or more; it waits for the job even if it is cancelled (the
/// job is under way and runs to its end).
public final class Pending<R: Sendable>: Sendable {
    private enum State {
        case running
        case waiting(CheckedContinuation<R, any Error>)
        case done(Result<R, any Error>)
    }

    private let state = Mutex(State.running)

    init() {}

    /// Called once, by the job, with what it returned or threw.
    func finish(_ result: Result<R, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<R, any Error>? in
            defer { state = .done(result) }
            guard case let .waiting(continuation) = state else { return nil }
            return continuation
        }
        waiting?.resume(with: result)
    }

    public var value: R {
        get async throws {
            let done = state.withLock { state -> Result<R, any Error>? in
                guard case let .done(result) = state else { return nil }
                return result
            }
            if let done { return try done.get() }
            return try await withCheckedThrowingContinuation { continuation in
                let done = state.withLock { state -> Result<R, any Error>? in
                    switch state {
                    case .running:
                        state = .waiting(continuation)
                        return nil
                    case let .done(result):
                        return result
                    case .waiting:
                        preconditionFailure("Pending: a second caller waits")
                    }
                }
                if let done { continuation.resume(with: done) }
            }
        }
    }
}
