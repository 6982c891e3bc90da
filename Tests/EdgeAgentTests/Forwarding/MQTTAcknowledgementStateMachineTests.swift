import EdgeAgentCore
import Testing

/// The MQTT sink's acknowledgement policy fed events, as the sink and libmosquitto's callbacks feed it.
@Suite struct MQTTAcknowledgementStateMachineTests {
    typealias Machine = MQTTAcknowledgementStateMachine

    /// Publishes what the attempt asks for, with ids from `next` on; returns the sequences published.
    static func publish(_ machine: inout Machine, _ sequences: [Int64], ids next: inout Int32) -> [Int64] {
        let asked = machine.attempt(sequences)
        for sequence in asked {
            machine.published(sequence, id: next)
            next += 1
        }
        return asked
    }

    @Test func aBatchIsDeliveredWhenEveryPUBACKIsIn() {
        var machine = Machine()
        var id: Int32 = 1
        #expect(Self.publish(&machine, [1, 2, 3], ids: &id) == [1, 2, 3])
        #expect(machine.acknowledged(id: 1, reason: 0) == .wait)
        #expect(machine.acknowledged(id: 3, reason: 0) == .wait)
        #expect(machine.acknowledged(id: 2, reason: 0) == .delivered)
        #expect(machine.ended(connected: true) == .delivered)
    }

    @Test func aTimeoutKeepsTheMessagesAndTheNextAttemptPublishesNothingAgain() {
        var machine = Machine()
        var id: Int32 = 1
        _ = Self.publish(&machine, [1, 2, 3, 4], ids: &id)
        #expect(machine.acknowledged(id: 1, reason: 0) == .wait)
        #expect(machine.ended(connected: true) == .retry(.timeout))
        // A late PUBACK of the first attempt, between attempts.
        #expect(machine.acknowledged(id: 2, reason: 0) == .wait)
        #expect(machine.attempt([1, 2, 3, 4]) == [], "libmosquitto still holds 3 and 4")
        #expect(machine.acknowledged(id: 3, reason: 0) == .wait)
        #expect(machine.acknowledged(id: 4, reason: 0) == .delivered, "the first attempt's PUBACK delivers")
        #expect(machine.ended(connected: true) == .delivered)
    }

    @Test func aLostConnectionEndsTheAttemptAndLibmosquittoResendsUnderTheSameIDs() {
        var machine = Machine()
        var id: Int32 = 10
        _ = Self.publish(&machine, [5, 6], ids: &id)
        #expect(machine.ended(connected: false) == .retry(.connect))
        #expect(machine.attempt([5, 6]) == [])
        #expect(machine.acknowledged(id: 10, reason: 0) == .wait)
        #expect(machine.acknowledged(id: 11, reason: 0) == .delivered)
    }

    @Test func aPUBACKBeforeThePublishCallReturnedCounts() {
        var machine = Machine()
        #expect(machine.attempt([1, 2]) == [1, 2])
        #expect(machine.acknowledged(id: 7, reason: 0) == nil, "id 7 not yet known")
        machine.published(1, id: 7)
        machine.published(2, id: 8)
        #expect(machine.acknowledged(id: 8, reason: 0) == .delivered)
    }

    @Test func aRefusalRejectsTheAttemptAndBisectedPartsKeepWhatWasAcknowledged() {
        var machine = Machine()
        var id: Int32 = 1
        _ = Self.publish(&machine, [1, 2, 3, 4], ids: &id)
        #expect(machine.acknowledged(id: 3, reason: 0x87) == .rejected(sequence: 3, reason: 0x87))
        #expect(machine.acknowledged(id: 1, reason: 0) == .rejected(sequence: 3, reason: 0x87))
        #expect(machine.ended(connected: true) == .rejected(sequence: 3, reason: 0x87))
        // The forwarder halves: [1, 2] then [3, 4].
        #expect(machine.attempt([1, 2]) == [], "1 is acknowledged, 2 still held")
        #expect(machine.acknowledged(id: 2, reason: 0) == .delivered)
        #expect(machine.ended(connected: true) == .delivered)
        #expect(machine.attempt([3, 4]) == [3], "the broker holds no copy of a refused event")
        machine.published(3, id: 5)
        #expect(machine.acknowledged(id: 5, reason: 0x87) == .rejected(sequence: 3, reason: 0x87))
        #expect(machine.ended(connected: true) == .rejected(sequence: 3, reason: 0x87))
        #expect(machine.attempt([4]) == [], "4 still held from the first attempt")
        #expect(machine.acknowledged(id: 4, reason: 0) == .delivered)
    }

    @Test func aDeliveredEventIsPublishedAgainWhenReplayed() {
        var machine = Machine()
        var id: Int32 = 1
        _ = Self.publish(&machine, [1, 2], ids: &id)
        _ = machine.acknowledged(id: 1, reason: 0)
        _ = machine.acknowledged(id: 2, reason: 0)
        #expect(machine.ended(connected: true) == .delivered)
        #expect(machine.attempt([1, 2]) == [1, 2])
    }

    @Test func anIDHandedOutAgainMeansItsOldMessageIsGone() {
        var machine = Machine()
        var id: Int32 = 1
        _ = Self.publish(&machine, [1, 2], ids: &id)
        #expect(machine.ended(connected: true) == .retry(.timeout))
        machine.published(9, id: 1)  // libmosquitto replaced the message of 1
        machine.published(nil, id: 2)  // and that of 2, by a status message
        #expect(machine.attempt([1, 2]) == [1, 2], "both are published again")
    }

    @Test func whatTheForwarderSettledIsForgotten() {
        var machine = Machine()
        var id: Int32 = 1
        _ = Self.publish(&machine, [1, 2, 3], ids: &id)
        _ = machine.acknowledged(id: 1, reason: 0)
        #expect(machine.ended(connected: true) == .retry(.timeout))
        #expect(Self.publish(&machine, [4, 5], ids: &id) == [4, 5])
        #expect(machine.tracked == 4, "1 is settled; 2 and 3 still held")
        #expect(machine.acknowledged(id: 2, reason: 0) == .wait, "a held message outside the attempt")
        _ = machine.acknowledged(id: 4, reason: 0)
        #expect(machine.acknowledged(id: 5, reason: 0) == .delivered)
        #expect(machine.ended(connected: true) == .delivered)
        _ = machine.acknowledged(id: 3, reason: 0)
        #expect(Self.publish(&machine, [6], ids: &id) == [6])
        #expect(machine.tracked == 1, "only 6")
    }

    @Test func theStatusMessagesPUBACKIsSeen() {
        var machine = Machine()
        #expect(machine.attempt([]) == [])
        #expect(!machine.acknowledged(id: 40))
        #expect(machine.acknowledged(id: 40, reason: 0) == nil)
        #expect(machine.acknowledged(id: 40))
    }
}
