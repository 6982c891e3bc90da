import Foundation
import Testing

@testable import EdgeAgent
@testable import EdgeAgentCore

/// A machine's stored JSON, written without `JSONEncoder`, is what `JSONEncoder` would write
/// (the same tree) and reads back equal: every field set, the edges of every number type.
@Suite struct RuleStateJSONTests {
    static func everyFieldSet() -> RuleState.Machine {
        var machine = RuleState.Machine()
        machine.state = "setup \"B\"\n\u{1}ü"
        machine.since = Timestamp(milliseconds: 1_700_000_000_123)
        machine.downtime = RuleState.Downtime(
            id: "dt-1", startedAt: Timestamp(milliseconds: -5), openingState: "down", lastState: "blocked",
            reasonAtStart: .min, announced: true)
        machine.counters = [
            "press-1.count": RuleState.Counter(
                last: .max,
                pending: RuleState.Pending(
                    quantity: 0, from: .max, to: 7, firstTime: Timestamp(milliseconds: 1),
                    lastTime: Timestamp(milliseconds: 2))),
            "press-1.scrap": RuleState.Counter(last: nil, pending: nil),
        ]
        machine.materials = [
            "press-1.resin": RuleState.Totalizer(
                last: .nan,
                pending: RuleState.Pending(
                    quantity: .infinity, from: -.infinity, to: 1e-300, firstTime: Timestamp(milliseconds: 3),
                    lastTime: Timestamp(milliseconds: 4))),
            "press-1.colour": RuleState.Totalizer(last: 0.1 + 0.2, pending: nil),
        ]
        machine.checks = [
            "melt": RuleState.Check(
                since: Timestamp(milliseconds: 9), value: -0.0, extreme: .greatestFiniteMagnitude, raised: false)
        ]
        machine.orderValue = ""
        var order = RuleState.WorkOrder(id: "WO-\\1", startedAt: Timestamp(milliseconds: 10))
        order.good = .max
        order.scrap = .min
        order.downtimeMs = 12_345
        order.materials = [
            RuleState.MaterialTotal(material: "resin", quantity: 1.5e17, unit: "kg", integral: false),
            RuleState.MaterialTotal(material: "caps", quantity: 3, unit: "pcs", integral: true),
        ]
        machine.workOrder = order
        return machine
    }

    static func decode(_ text: String) throws -> RuleState.Machine {
        let decoder = JSONDecoder()
        let nonFinite = StoredRuleState.nonFinite
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: nonFinite.positive, negativeInfinity: nonFinite.negative, nan: nonFinite.nan)
        return try decoder.decode(RuleState.Machine.self, from: Data(text.utf8))
    }

    @Test(arguments: [everyFieldSet(), RuleState.Machine()])
    func readsBackEqualAndIsTheTreeJSONEncoderWrites(_ machine: RuleState.Machine) throws {
        let read = try Self.decode(machine.storedJSON)
        // NaN is not equal to itself: compare it apart, then the rest.
        var expected = machine, got = read
        #expect(got.materials["press-1.resin"]?.last?.isNaN == expected.materials["press-1.resin"]?.last?.isNaN)
        expected.materials["press-1.resin"]?.last = 0
        got.materials["press-1.resin"]?.last = 0
        #expect(got == expected, "\(machine.storedJSON)")

        let encoder = JSONEncoder()
        let nonFinite = StoredRuleState.nonFinite
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: nonFinite.positive, negativeInfinity: nonFinite.negative, nan: nonFinite.nan)
        let reference = try JSONSerialization.jsonObject(with: try encoder.encode(machine)) as! NSDictionary
        let ours = try JSONSerialization.jsonObject(with: Data(machine.storedJSON.utf8)) as! NSDictionary
        #expect(ours == reference, "ours: \(machine.storedJSON)")
    }
}
