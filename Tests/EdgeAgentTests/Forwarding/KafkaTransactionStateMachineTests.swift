import EdgeAgentCore
import Testing

/// The exactly-once policy fed what librdkafka's transactional calls return, as the sink feeds it.
@Suite struct KafkaTransactionStateMachineTests {
    typealias Machine = KafkaTransactionStateMachine

    enum Step: Sendable, CustomStringConvertible {
        case attempt([Int64])
        case started(Machine.Failure?)
        case cursorRead(Machine.Cursor?)
        case cursorFailed
        case committed
        case failed(Machine.Failure)
        case aborted(Machine.Failure?)

        var description: String {
            switch self {
            case let .attempt(batch): "attempt(\(batch))"
            case let .started(failure): "started(\(failure.map { "\($0)" } ?? "ok"))"
            case let .cursorRead(cursor): "cursorRead(\(cursor.map { "\($0.outbox):\($0.sequence)" } ?? "none"))"
            case .cursorFailed: "cursorFailed"
            case .committed: "committed"
            case let .failed(failure): "failed(\(failure))"
            case let .aborted(failure): "aborted(\(failure.map { "\($0)" } ?? "ok"))"
            }
        }
    }

    static func run(_ steps: [Step]) -> [Machine.Action] {
        var machine = Machine()
        return steps.map { step in
            switch step {
            case let .attempt(batch): machine.attempt(batch, outbox: "this")
            case let .started(failure): machine.started(failure)
            case let .cursorRead(cursor): machine.cursorRead(cursor)
            case .cursorFailed: machine.cursorFailed()
            case .committed: machine.committed()
            case let .failed(failure): machine.failed(failure)
            case let .aborted(failure): machine.aborted(failure)
            }
        }
    }

    @Test func theFirstBatchStartsAProducerReadsTheCursorAndCommitsTheBatch() {
        #expect(
            Self.run([.attempt([1, 2, 3]), .started(nil), .cursorRead(nil), .committed, .attempt([4, 5]), .committed])
                == [.startProducer, .readCursor, .send([1, 2, 3]), .delivered, .send([4, 5]), .delivered])
    }

    /// A kill -9 between Kafka's commit and the outbox's settlement: what Kafka committed of
    /// this outbox is delivered without being sent again.
    @Test(
        arguments: [
            (3 as Int64?, [Machine.Action.startProducer, .readCursor, .delivered]),
            (2, [.startProducer, .readCursor, .send([3])]),
            (7, [.startProducer, .readCursor, .delivered]),
            (nil, [.startProducer, .readCursor, .send([1, 2, 3])]),
        ] as [(Int64?, [Machine.Action])])
    func nothingKafkaCommittedIsSentAgain(cursor: Int64?, actions: [Machine.Action]) {
        let read = cursor.map { Machine.Cursor(outbox: "this", sequence: $0) }
        #expect(Self.run([.attempt([1, 2, 3]), .started(nil), .cursorRead(read)]) == actions)
    }

    /// A new outbox (SPEC 7) numbers from 1 again: a cursor record of an earlier outbox, or one
    /// that names none, counts as none, and every batch is sent.
    @Test(arguments: ["earlier", ""])
    func aCursorOfAnotherOutboxCountsAsNone(outbox: String) {
        let read = Machine.Cursor(outbox: outbox, sequence: 2_000_000)
        #expect(
            Self.run([.attempt([1, 2, 3]), .started(nil), .cursorRead(read), .committed, .attempt([4])])
                == [.startProducer, .readCursor, .send([1, 2, 3]), .delivered, .send([4])])
    }

    /// | failure | then |
    @Test(
        arguments: [
            // Abortable or retriable: abort, and the next attempt sends the batch again, the cursor known.
            (
                [Step.failed(.abortable), .aborted(nil), .attempt([1, 2, 3])],
                [Machine.Action.abort, .retry, .send([1, 2, 3])]
            ),
            ([.failed(.retriable), .aborted(nil), .attempt([1, 2, 3])], [.abort, .retry, .send([1, 2, 3])]),
            // Fatal, or an abort that failed: a new producer, and the cursor read again.
            (
                [
                    .failed(.fatal), .attempt([1, 2, 3]), .started(nil),
                    .cursorRead(.init(outbox: "this", sequence: 3)),
                ],
                [.retry, .startProducer, .readCursor, .delivered]
            ),
            (
                [.failed(.abortable), .aborted(.fatal), .attempt([1, 2, 3]), .started(nil), .cursorRead(nil)],
                [.abort, .retry, .startProducer, .readCursor, .send([1, 2, 3])]
            ),
            ([.failed(.retriable), .aborted(.retriable), .attempt([1, 2, 3])], [.abort, .retry, .startProducer]),
            // An attempt cut short mid-transaction (a stop): its outcome is unknown.
            ([.attempt([1, 2, 3])], [.startProducer]),
        ] as [([Step], [Machine.Action])])
    func aFailedTransactionIsAbortedOrItsProducerReplaced(after: [Step], actions: [Machine.Action]) {
        let start: [Step] = [.attempt([1, 2, 3]), .started(nil), .cursorRead(nil)]
        #expect(Array(Self.run(start + after).dropFirst(start.count)) == actions)
    }

    /// `outbox dead retry` and `outbox replay` queue events at or behind the cursor again: they
    /// are sent whole, and the cursor record keeps the cursor where it was.
    @Test func reQueuedEventsBehindTheCursorAreSentAndTheCursorNeverMovesBack() {
        var machine = Machine()
        _ = machine.attempt([9, 10], outbox: "this")
        _ = machine.started(nil)
        #expect(machine.cursorRead(.init(outbox: "this", sequence: 10)) == .delivered)
        #expect(machine.attempt([3, 7], outbox: "this", requeued: true) == .send([3, 7]))
        #expect(machine.recordSequence == 10, "the cursor record keeps 10")
        #expect(machine.committed() == .delivered)
        #expect(machine.cursor == .init(outbox: "this", sequence: 10))
        #expect(machine.attempt([9, 10, 11], outbox: "this") == .send([11]))
        #expect(machine.recordSequence == 11)
    }

    @Test func aProducerOrCursorThatCannotBeHadIsRetried() {
        #expect(
            Self.run([.attempt([1]), .started(.retriable), .attempt([1]), .started(nil), .cursorFailed, .attempt([1])])
                == [.startProducer, .retry, .startProducer, .readCursor, .retry, .readCursor])
    }

    @Test func theCursorIsTheLastSequenceCommitted() {
        var machine = Machine()
        _ = machine.attempt([4, 5], outbox: "this")
        _ = machine.started(nil)
        _ = machine.cursorRead(.init(outbox: "this", sequence: 3))
        #expect(machine.cursor == .init(outbox: "this", sequence: 3))
        _ = machine.committed()
        #expect(machine.cursor == .init(outbox: "this", sequence: 5))
        #expect(machine.attempt([6], outbox: "this") == .send([6]))
    }
}
