import EdgeAgentCore
import Testing

/// The Kafka sink's settlement policy fed events, as the sink and librdkafka's delivery reports feed it.
@Suite struct KafkaDeliveryStateMachineTests {
    typealias Machine = KafkaDeliveryStateMachine

    /// Produces what the attempt asks for; returns each sequence's token.
    static func produce(_ machine: inout Machine, _ sequences: [Int64]) -> [Int64: Int] {
        let produce = machine.attempt(sequences)
        return Dictionary(uniqueKeysWithValues: produce.enumerated().map { ($1, machine.firstToken + $0) })
    }

    static let timedOut: Int32 = -192
    static let notEnoughReplicas: Int32 = 19

    /// Reports in any order, each with its code (0 success); what the machine decides after each.
    @Test(
        arguments: [
            ([(1, 0), (2, 0), (3, 0)], [Machine.Decision.wait, .wait, .delivered]),
            ([(3, 0), (1, 0), (2, 0)], [.wait, .wait, .delivered]),
            ([(2, timedOut), (3, 0), (1, 0)], [.wait, .wait, .failed(sequence: 2, code: timedOut)]),
            ([(3, notEnoughReplicas), (1, timedOut), (2, 0)], [.wait, .wait, .failed(sequence: 1, code: timedOut)]),
        ] as [([(Int64, Int32)], [Machine.Decision])])
    func decidesOnlyWhenEveryReportIsInAndNamesTheFirstFailure(
        reports: [(Int64, Int32)], decisions: [Machine.Decision]
    ) {
        var machine = Machine()
        let tokens = Self.produce(&machine, [1, 2, 3])
        var seen: [Machine.Decision] = []
        for (sequence, code) in reports { seen.append(machine.report(token: tokens[sequence]!, code: code)) }
        #expect(seen == decisions)
        #expect(machine.ended() == decisions.last)
    }

    /// | attempt 1 reports | delivered run | attempt 2 produces |
    @Test(
        arguments: [
            ([0, 0, timedOut, 0, 0], 2 as Int64?, [3, 4, 5] as [Int64]),
            ([timedOut, 0, 0, 0, 0], nil, [1, 2, 3, 4, 5]),
            ([0, 0, 0, 0, notEnoughReplicas], 4, [5]),
            ([0, notEnoughReplicas, 0, notEnoughReplicas, 0], 1, [2, 3, 4, 5]),
        ] as [([Int32], Int64?, [Int64])])
    func aFailedAttemptDeliversOnlyItsLeadingRunAndTheNextSendsTheRest(
        codes: [Int32], run: Int64?, again: [Int64]
    ) {
        var machine = Machine()
        let batch: [Int64] = [1, 2, 3, 4, 5]
        let tokens = Self.produce(&machine, batch)
        // Out of order across partitions: the last record's report first.
        for (sequence, code) in zip(batch, codes).reversed() { machine.report(token: tokens[sequence]!, code: code) }
        #expect(machine.ended() != .delivered)
        #expect(machine.deliveredThrough == run, "the cursor may pass only a contiguous run")
        #expect(machine.attempt(batch) == again)
    }

    @Test func aReportMissingAtTheEndIsATimeoutAndALateOneIsIgnored() {
        var machine = Machine()
        let tokens = Self.produce(&machine, [1, 2, 3])
        machine.report(token: tokens[1]!, code: 0)
        machine.report(token: tokens[3]!, code: 0)
        #expect(machine.decision == .wait)
        #expect(machine.ended() == .timedOut)
        #expect(machine.deliveredThrough == 1, "3 succeeded but 2 did not: it is not part of the run")
        let again = Self.produce(&machine, [1, 2, 3])
        #expect(again.keys.sorted() == [2, 3])
        // The first attempt's record 2, failed by the purge after its timeout, says nothing now.
        #expect(machine.report(token: tokens[2]!, code: Self.timedOut) == .wait)
        machine.report(token: again[2]!, code: 0)
        #expect(machine.report(token: again[3]!, code: 0) == .delivered)
        #expect(machine.ended() == .delivered)
        #expect(machine.deliveredThrough == nil, "a delivered batch is the forwarder's to settle")
    }

    @Test func aRecordLibrdkafkaRefusesAtOnceEndsTheAttemptThere() {
        var machine = Machine()
        #expect(machine.attempt([1, 2, 3]) == [1, 2, 3])
        let first = machine.firstToken
        machine.notProduced(from: first + 1, code: -184)  // queue full
        #expect(machine.report(token: first, code: 0) == .failed(sequence: 2, code: -184))
        #expect(machine.ended() == .failed(sequence: 2, code: -184))
        #expect(machine.attempt([1, 2, 3]) == [2, 3])
    }

    @Test func everyRecordOfTheAttemptIsAwaitedFromItsStart() {
        var machine = Machine()
        let tokens = Self.produce(&machine, [1, 2, 3])
        #expect(machine.decision == .wait)
        #expect(machine.report(token: tokens[1]!, code: 0) == .wait, "2 and 3 may still be being produced")
        #expect(machine.ended() == .timedOut)
        #expect(machine.deliveredThrough == 1)
    }

    @Test func tokensAreNeverGivenTwice() {
        var machine = Machine()
        let first = Self.produce(&machine, [1, 2, 3])
        _ = machine.ended()
        let second = Self.produce(&machine, [1, 2, 3])
        #expect(Set(first.values).isDisjoint(with: second.values))
        // Late reports of the first attempt say nothing of the second.
        #expect(machine.report(token: first[1]!, code: 0) == .wait)
        #expect(machine.report(token: first[3]!, code: 0) == .wait)
        #expect(machine.ended() == .timedOut)
        #expect(machine.deliveredThrough == nil)
    }

    @Test func anotherBatchStartsANewRun() {
        var machine = Machine()
        let tokens = Self.produce(&machine, [1, 2, 3])
        machine.report(token: tokens[1]!, code: 0)
        machine.report(token: tokens[2]!, code: Self.timedOut)
        machine.report(token: tokens[3]!, code: 0)
        _ = machine.ended()
        #expect(machine.attempt([7, 8]) == [7, 8], "after a restart the forwarder's batch is another")
        #expect(machine.attempt([1]) == [1], "a half that the run does not fit is sent whole")
    }
}
