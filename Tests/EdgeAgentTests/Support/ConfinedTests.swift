import Dispatch
import Synchronization
import Testing

@testable import EdgeAgent

/// `Confined.start`: a job queued on the thread runs to its end, and its result is taken later.
@Suite struct ConfinedTests {
    struct Refused: Error, Equatable {}

    /// A caller cancelled (a stop) while its job waits behind another still has that job run and
    /// gets its result: a settlement is recorded. `run`'s job, queued the same way, is dropped.
    @Test func aJobStartedByACancelledCallerStillRunsAndItsResultIsTaken() async throws {
        let confined = Confined(0)
        let gate = DispatchSemaphore(value: 0)
        let ran = Mutex<[String]>([])
        _ = confined.start { _ in gate.wait() }  // holds the thread until the caller is cancelled
        let caller = Task {
            let started = confined.start { _ in
                ran.withLock { $0.append("start") }
                return 7
            }
            await #expect(throws: CancellationError.self) {
                try await confined.run { _ in ran.withLock { $0.append("run") } }
            }
            return try await started.value
        }
        caller.cancel()
        gate.signal()
        #expect(try await caller.value == 7)
        _ = try await confined.run { _ in }  // after whatever was queued before
        #expect(ran.withLock { $0 } == ["start"])
        await confined.shutdown()
    }

    /// A result taken after the job ended, and a job's error, reach the caller as they were.
    @Test func aResultTakenAfterTheJobEndedIsItsValueOrItsError() async throws {
        let confined = Confined(5)
        let doubled = confined.start { $0 * 2 }
        let refused = confined.start { _ -> Int in throw Refused() }
        _ = try await confined.run { _ in }  // both have ended
        #expect(try await doubled.value == 10)
        await #expect(throws: Refused.self) { try await refused.value }
        await confined.shutdown()
    }
}
