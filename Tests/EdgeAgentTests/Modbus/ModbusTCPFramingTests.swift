import EdgeAgentCore
import Testing

@Suite struct ModbusTCPFramingTests {
    typealias Framing = ModbusTCPFraming

    static let request = Framing.Request(
        transaction: 0x1234, unit: 1, function: .holdingRegisters, address: 100, count: 2)

    @Test func aRequestIsItsHeaderFunctionAddressAndCountBigEndian() {
        #expect(Self.request.bytes == [0x12, 0x34, 0, 0, 0, 6, 1, 3, 0, 100, 0, 2])
        let coils = Framing.Request(transaction: 7, unit: 255, function: .coils, address: 0x1FF, count: 19)
        #expect(coils.bytes == [0, 7, 0, 0, 0, 6, 255, 1, 0x01, 0xFF, 0, 19])
        #expect(coils.replyLength == 9 + 3, "19 bits take 3 bytes")
        #expect(Self.request.replyLength == 9 + 4)
    }

    @Test func theReplyToTheLargestCountARequestMayAskForFitsInAFrame() {
        #expect(Framing.Function.holdingRegisters.counts == 1...125)
        #expect(Framing.Function.inputRegisters.counts == 1...125)
        #expect(Framing.Function.coils.counts == 1...2000)
        #expect(Framing.Function.discreteInputs.counts == 1...2000)
        for function in [Framing.Function.holdingRegisters, .coils] {
            let largest = Framing.Request(
                transaction: 1, unit: 1, function: function, address: 0, count: UInt16(function.counts.upperBound))
            #expect(largest.replyLength <= Framing.maxFrameLength)
        }
    }

    @Test func theHeaderGivesTheLengthOfTheWholeFrame() {
        #expect(Framing.frameLength(header: [0x12, 0x34, 0, 0, 0, 7, 1]) == 13)
        #expect(Framing.frameLength(header: [0, 0, 0, 0, 0x01, 0x00, 1]) == 262)
    }

    /// Each reply to `request` (holding 100+2, transaction 0x1234, unit 1), and what it says. A
    /// reply with another unit id (0 and 255 here) is taken: the transaction identifies it.
    @Test(
        arguments: [
            ([0x12, 0x34, 0, 0, 0, 7, 1, 3, 4, 0xAB, 0xCD, 0, 1], .data([0xAB, 0xCD, 0, 1])),
            ([0x12, 0x34, 0, 0, 0, 3, 1, 0x83, 2], .exception(2)),
            ([0x12, 0x34, 0, 0, 0, 3, 1, 0x83, 11], .exception(11)),
            ([0x12, 0x34, 0, 0, 0, 3, 1, 0x83, 12], .invalid("exception 12")),
            ([0x12, 0x33, 0, 0, 0, 7, 1, 3, 4, 0xAB, 0xCD, 0, 1], .invalid("transaction 4659, expected 4660")),
            ([0x12, 0x34, 0, 1, 0, 7, 1, 3, 4, 0xAB, 0xCD, 0, 1], .invalid("protocol not 0")),
            ([0x12, 0x34, 0, 0, 0, 7, 0, 3, 4, 0xAB, 0xCD, 0, 1], .data([0xAB, 0xCD, 0, 1])),
            ([0x12, 0x34, 0, 0, 0, 7, 255, 3, 4, 0xAB, 0xCD, 0, 1], .data([0xAB, 0xCD, 0, 1])),
            ([0x12, 0x34, 0, 0, 0, 3, 0, 0x83, 2], .exception(2)),
            ([0x12, 0x34, 0, 0, 0, 7, 1, 4, 4, 0xAB, 0xCD, 0, 1], .invalid("function 4, expected 3")),
            ([0x12, 0x34, 0, 0, 0, 3, 1, 0x84, 2], .invalid("function 132, expected 3")),
            ([0x12, 0x34, 0, 0, 0, 5, 1, 3, 2, 0xAB, 0xCD], .invalid("byte count 2, expected 4")),
            ([0x12, 0x34, 0, 0, 0, 8, 1, 3, 4, 0xAB, 0xCD, 0, 1], .invalid("length field disagrees")),
            ([0x12, 0x34, 0, 0, 0, 2, 1, 3], .invalid("frame of 8 bytes")),
        ] as [([UInt8], Framing.Reply)])
    func aReplyIsTakenOnlyIfItAnswersTheRequest(frame: [UInt8], expected: Framing.Reply) {
        #expect(Framing.reply(to: Self.request, frame[...]) == expected)
    }

    @Test func registersAreBigEndianAndBitsLowestFirst() {
        #expect(Framing.registers([0xAB, 0xCD, 0x00, 0x01, 0xFF, 0xFF][...]) == [0xABCD, 1, 0xFFFF])
        #expect(
            Framing.bits([0b1000_0101, 0b0000_0010][...], count: 10)
                == [true, false, true, false, false, false, false, true, false, true])
    }

    /// A reply in the middle of a larger buffer (the client's receive buffer) reads the same.
    @Test func aReplyReadsTheSameFromASliceOfALargerBuffer() {
        let buffer: [UInt8] = [9, 9, 0x12, 0x34, 0, 0, 0, 7, 1, 3, 4, 0xAB, 0xCD, 0, 1, 9]
        guard case let .data(data) = Framing.reply(to: Self.request, buffer[2..<15]) else {
            Issue.record("not taken")
            return
        }
        #expect(Framing.registers(data) == [0xABCD, 1])
    }
}
