import EdgeAgent
import EdgeAgentCore
import Testing

func tag(
    _ name: String, _ address: Int, _ type: TagConfig.ValueType = .uint16, area: TagConfig.Area = .holding,
    length: Int? = nil
) -> TagConfig {
    var t = TagConfig(name: name, area: area, address: address, type: type)
    t.length = length
    return t
}

@Suite struct ReadPlanTests {
    @Test func coalescesAcrossSmallGapsAndSplitsAtLargeOnes() {
        let tags = [
            tag("a", 100), tag("b", 101), tag("c", 102, .float32), tag("d", 110), tag("e", 130),
            tag("f", 200, area: .input),
        ]
        let plan = ReadPlan(tags: tags, maxGap: 8, maxRegistersPerRead: 125)
        #expect(plan.requests.map(\.description) == ["holding 100+11", "holding 130+1", "input 200+1"])
        #expect(plan.requests[0].tags == [0, 1, 2, 3])
    }

    @Test func respectsTheRequestSizeLimits() {
        let tags = (0..<300).map { tag("t\($0)", $0) }
        #expect(ReadPlan(tags: tags, maxGap: 8, maxRegistersPerRead: 125).requests.map(\.count) == [125, 125, 50])
        #expect(ReadPlan(tags: tags, maxGap: 8, maxRegistersPerRead: 40).requests.count == 8)
        let coils = (0..<2500).map { tag("c\($0)", $0, .bool, area: .coil) }
        #expect(ReadPlan(tags: coils, maxGap: 0, maxRegistersPerRead: 125).requests.map(\.count) == [2000, 500])
    }

    @Test func aTagNeverStraddlesTwoRequests() {
        let tags = [tag("a", 0), tag("s", 120, .string, length: 8)]
        let plan = ReadPlan(tags: tags, maxGap: 200, maxRegistersPerRead: 125)
        #expect(plan.requests.map(\.description) == ["holding 0+1", "holding 120+8"])
    }

    @Test func orderOfDefinitionDoesNotMatter() {
        let tags = [tag("z", 105), tag("a", 100), tag("m", 103, .float32)]
        #expect(
            ReadPlan(tags: tags, maxGap: 8, maxRegistersPerRead: 125).requests.map(\.description) == ["holding 100+6"])
    }

    @Test func isolatingSplitsOneRequestIntoItsTags() {
        let tags = [tag("a", 100), tag("b", 102, .uint32), tag("c", 300)]
        let plan = ReadPlan(tags: tags, maxGap: 8, maxRegistersPerRead: 125)
        let split = plan.isolating(plan.requests[0], tags: tags)
        #expect(split.requests.map(\.description) == ["holding 100+1", "holding 102+2", "holding 300+1"])
    }
}

@Suite struct RegisterDecodingTests {
    func decode(_ type: TagConfig.ValueType, _ order: TagConfig.ByteOrder = .ABCD, _ registers: [UInt16]) -> TagValue {
        var t = tag("t", 0, type)
        t.order = order
        return RegisterDecoding.decode(t, registers: registers[...])
    }

    @Test func decodesEveryByteOrder() {
        // 0x11223344 stored four ways.
        #expect(decode(.uint32, .ABCD, [0x1122, 0x3344]) == .uint(0x1122_3344))
        #expect(decode(.uint32, .CDAB, [0x3344, 0x1122]) == .uint(0x1122_3344))
        #expect(decode(.uint32, .BADC, [0x2211, 0x4433]) == .uint(0x1122_3344))
        #expect(decode(.uint32, .DCBA, [0x4433, 0x2211]) == .uint(0x1122_3344))
        #expect(decode(.uint64, .CDAB, [0x7788, 0x5566, 0x3344, 0x1122]) == .uint(0x1122_3344_5566_7788))
    }

    @Test func decodesSignedAndFloatingTypes() {
        #expect(decode(.int16, .ABCD, [0xFFFE]) == .int(-2))
        #expect(decode(.int32, .ABCD, [0xFFFF, 0xFFFB]) == .int(-5))
        #expect(decode(.int64, .ABCD, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]) == .int(-1))
        #expect(decode(.float32, .ABCD, [0x4060, 0x0000]) == .double(3.5))
        #expect(decode(.float32, .CDAB, [0x0000, 0x4060]) == .double(3.5))
        #expect(decode(.float64, .ABCD, [0x400C, 0, 0, 0]) == .double(3.5))
    }

    @Test func decodesBitsStringsAndScaling() {
        var bit = tag("fault", 110, .bool)
        bit.bit = 3
        #expect(RegisterDecoding.decode(bit, registers: [0b1000][...]) == .bool(true))
        #expect(RegisterDecoding.decode(bit, registers: [0b0111][...]) == .bool(false))
        let order = tag("order", 120, .string, length: 4)
        #expect(RegisterDecoding.decode(order, registers: [0x5741, 0x2D37, 0x2000, 0x0000][...]) == .string("WA-7"))
        var scaled = tag("temp", 0, .int16)
        scaled.scale = 0.1
        scaled.offset = -40
        #expect(RegisterDecoding.decode(scaled, registers: [650][...]) == .double(25))
    }
}
