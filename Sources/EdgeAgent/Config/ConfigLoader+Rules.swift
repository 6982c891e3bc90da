import Yams

extension ConfigLoader {
    static func parseMachine(_ node: Node, _ path: String, _ reader: ConfigReader) -> MachineConfig? {
        guard let m = MapNode(node, path: path, reader: reader, allowed: ["name", "state", "counters"]) else { return nil }
        guard let name = m.string("name", required: true) else { return nil }
        var machine = MachineConfig(name: name)
        if let s = m.map("state", allowed: ["tag", "map", "bits", "default", "downtime", "reason_tag", "min_downtime"]) {
            var source: MachineConfig.StateRule.Source?
            if s.has("map") == s.has("bits") {
                reader.report(s.node, s.sub("map"), "give either 'tag' with 'map', or 'bits'")
            } else if s.has("map") {
                let tag = s.string("tag", required: true)
                var codes: [(Int64, String)] = []
                for (key, value, keyNode) in s.pairs("map") {
                    if let code = Int64(key) { codes.append((code, value)) } else {
                        reader.report(keyNode, s.sub("map.\(key)"), "a state code must be a whole number, found '\(key)'")
                    }
                }
                if let tag { source = .map(tag: tag, codes: codes) }
            } else {
                var bits: [(String, String)] = []
                for item in s.list("bits") {
                    guard let b = MapNode(item.node, path: item.path, reader: reader, allowed: ["tag", "state"]),
                          let tag = b.string("tag", required: true), let state = b.string("state", required: true) else { continue }
                    bits.append((tag, state))
                }
                if s.has("tag") {
                    reader.report(s["tag"], s.sub("tag"), "'tag' goes with 'map'; with 'bits' each entry names its tag")
                }
                source = .bits(bits, default: s.string("default") ?? "idle")
            }
            if let source {
                var rule = MachineConfig.StateRule(source: source)
                rule.downtime = s.strings("downtime") ?? []
                rule.reasonTag = s.string("reason_tag")
                rule.minDowntime = s.duration("min_downtime", positive: false) ?? .zero
                let known = Set(rule.knownStates)
                for (i, state) in rule.downtime.enumerated() where !known.contains(state) {
                    reader.report(s.list("downtime")[i].node, s.sub("downtime[\(i)]"),
                                  "'\(state)' is not a state this machine can be in (\(known.sorted().joined(separator: ", ")))")
                }
                machine.state = rule
            }
        }
        for item in m.list("counters") {
            guard let c = MapNode(item.node, path: item.path, reader: reader,
                                  allowed: ["tag", "event", "unit", "rollover", "work_order_tag", "min_interval"]) else { continue }
            let tag = c.string("tag", required: true)
            let event = c.oneOf("event", ["production.completed", "production.scrapped"], required: true)
            guard let tag, let event else { continue }
            var counter = MachineConfig.CounterRule(tag: tag, event: EventType(event))
            counter.unit = c.string("unit") ?? counter.unit
            if let text = c.string("rollover") {
                if let v = UInt64(text), v >= 2 { counter.rollover = v } else {
                    reader.report(c["rollover"], c.sub("rollover"), "expected a whole number of at least 2, found '\(text)'")
                }
            }
            counter.workOrderTag = c.string("work_order_tag")
            counter.minInterval = c.duration("min_interval", positive: false) ?? .zero
            machine.counters.append(counter)
        }
        return machine
    }
}

extension MachineConfig.StateRule {
    /// Every state name this rule can produce.
    public var knownStates: [String] {
        switch source {
        case let .map(_, codes): codes.map(\.state)
        case let .bits(bits, fallback): bits.map(\.state) + [fallback]
        }
    }

    /// The tags this rule reads.
    public var tags: [String] {
        switch source {
        case let .map(tag, _): [tag] + (reasonTag.map { [$0] } ?? [])
        case let .bits(bits, _): bits.map(\.tag) + (reasonTag.map { [$0] } ?? [])
        }
    }
}
