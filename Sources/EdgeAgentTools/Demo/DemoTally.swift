import EdgeAgent
import Foundation

/// What the demo's receiver got, added up the way a planner would read it: counts by type, the
/// latest event of each kind, and per machine the quantities to hold against the simulator.
public struct DemoTally: Sendable {
    public var byType: [String: Int] = [:]
    /// The latest event of each type, as one line: subject and the data a planner reads.
    public var latest: [String: String] = [:]
    public var parts: [String: Int64] = [:]
    public var consumed: [String: Double] = [:]
    public var downtimes: [String: Int] = [:]
    public var exceptions: [String: Int] = [:]
    /// `work_order.completed` by order: good parts and material consumed.
    public var completedOrders: [String: (good: Int64, materials: Double)] = [:]

    public init() {}

    /// Adds one received CloudEvent (its JSON text); text that is not one is ignored.
    public mutating func add(_ text: some StringProtocol) {
        guard let event = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let type = event["type"] as? String
        else { return }
        let data = event["data"] as? [String: Any] ?? [:]
        let machine = data["machine"] as? String ?? ""
        byType[type, default: 0] += 1
        let skipped: Set<String> = ["machine", "counter", "downtime_id", "exception_id", "started_at", "ended_at"]
        let fields = data.keys.filter { !skipped.contains($0) }.sorted().map { "\($0)=\(Self.text(data[$0]!))" }
        latest[type] = ([event["subject"] as? String ?? ""] + fields).joined(separator: " ")
        let quantity = (data["quantity"] as? NSNumber)?.doubleValue ?? 0
        switch type {
        case "production.completed": parts[machine, default: 0] += Int64(quantity)
        case "material.consumed": consumed[machine, default: 0] += quantity
        case "machine.downtime.started": downtimes[machine, default: 0] += 1
        case "quality.exception.raised": exceptions[machine, default: 0] += 1
        case "work_order.completed":
            let materials = (data["materials"] as? [String: Any] ?? [:]).values
                .compactMap { (($0 as? [String: Any])?["quantity"] as? NSNumber)?.doubleValue }.reduce(0, +)
            completedOrders[data["work_order"] as? String ?? ""] = (
                (data["good"] as? NSNumber)?.int64Value ?? 0, materials
            )
        default: break
        }
    }

    static func text(_ value: Any) -> String {
        switch value {
        case let s as String: return s
        case is NSNull: return "null"
        case let n as NSNumber: return n.objCType.pointee == 99 ? "\(n.boolValue)" : "\(n)"  // "c": a JSON true/false
        default:
            let json = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            return json.map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
        }
    }

    /// Lines holding the simulator's ground truth for `machine` beside what was received.
    public func compared(machine: String, with truth: LineSimulator.Truth, unit: String = "kg") -> [String] {
        func line(
            _ what: String, _ real: some Numeric & CustomStringConvertible,
            _ got: some Numeric & CustomStringConvertible,
            _ same: Bool
        ) -> String {
            "  \(machine) \(what): \(real) played, \(got) received  \(same ? "=" : "≠ MISMATCH")"
        }
        var lines = [
            line("parts made", truth.parts, parts[machine] ?? 0, Int64(truth.parts) == parts[machine] ?? 0),
            line("downtimes", truth.downtimes, downtimes[machine] ?? 0, truth.downtimes == downtimes[machine] ?? 0),
        ]
        if truth.resin > 0 || consumed[machine] != nil {
            lines.append(
                line(
                    "resin used (\(unit))", truth.resin, Int64(consumed[machine] ?? 0),
                    Double(truth.resin) == consumed[machine] ?? 0))
        }
        if truth.excursions > 0 || exceptions[machine] != nil {
            lines.append(
                line(
                    "melt excursions", truth.excursions, exceptions[machine] ?? 0,
                    truth.excursions == exceptions[machine] ?? 0))
        }
        for order in truth.completedOrders {
            let got = completedOrders[order.id]
            let same = got.map { $0.good == Int64(order.parts) && $0.materials == Double(order.resin) } ?? false
            lines.append(
                "  \(machine) order \(order.id): \(order.parts) parts and \(order.resin) \(unit) played, "
                    + (got.map { "\($0.good) parts and \(Int64($0.materials)) \(unit) in work_order.completed" }
                        ?? "not completed")
                    + "  \(same ? "=" : "≠ MISMATCH")")
        }
        return lines
    }
}
