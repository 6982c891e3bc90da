/// `publish: on_change` tags as `tag.changed` events: a change smaller than the deadband is not one;
/// a change of quality always is. A float register's NaN (`null` in the event) compares false with
/// every number, so going to or from NaN is a change and staying at NaN is not.
extension RuleEngine {
    mutating func publish(_ sample: Sample, deadband: Double, into events: inout [Event]) {
        let before = state.published[sample.tag]
        let value = sample.quality == .good ? sample.value : nil
        if let before, before.quality == sample.quality {
            guard sample.quality == .good, let value else { return }
            if let old = before.value?.number, let new = value.number {
                if old.isNaN || new.isNaN {
                    guard old.isNaN != new.isNaN else { return }
                } else {
                    guard abs(new - old) >= deadband, new != old else { return }
                }
            } else if before.value == value {
                return
            }
        }
        state.published[sample.tag] = RuleState.Published(value: value, quality: sample.quality)
        events.append(
            Event(
                type: .tagChanged, subject: sample.tag, time: sample.time,
                data: [
                    "tag": .string(sample.tag), "value": value?.json ?? .null,
                    "quality": .string(sample.quality.rawValue),
                ]))
    }
}
