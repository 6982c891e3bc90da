import EdgeAgentCore

extension ConfigLoader {
    /// `types`: the value type of every device tag (`DEVICE.TAG`); historian tags have none.
    static func parseMachine(
        _ node: ConfigNode, _ path: String, _ reader: ConfigReader, types: [String: TagConfig.ValueType]
    )
        -> MachineConfig?
    {
        guard
            let m = MapNode(
                node, path: path, reader: reader,
                allowed: ["name", "state", "counters", "work_order", "materials", "quality"])
        else { return nil }
        guard let name = m.string("name", required: true) else { return nil }
        var machine = MachineConfig(name: name)
        if let s = m.map("state", allowed: ["tag", "map", "bits", "default", "downtime", "reason_tag", "min_downtime"])
        {
            var source: MachineConfig.StateRule.Source?
            if s.has("map") == s.has("bits") {
                reader.report(s.node, s.sub("map"), "give either 'tag' with 'map', or 'bits'")
            } else if s.has("map") {
                let tag = s.string("tag", required: true)
                var codes: [(Int64, String)] = []
                for (key, value, keyNode) in s.pairs("map") {
                    if let code = Int64(key) {
                        codes.append((code, value))
                    } else {
                        reader.report(
                            keyNode, s.sub("map.\(key)"), "a state code must be a whole number, found '\(key)'")
                    }
                }
                if let tag { source = .map(tag: tag, codes: codes) }
            } else {
                var bits: [(String, String)] = []
                for item in s.list("bits") {
                    guard let b = MapNode(item.node, path: item.path, reader: reader, allowed: ["tag", "state"]),
                        let tag = b.string("tag", required: true), let state = b.string("state", required: true)
                    else { continue }
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
                    reader.report(
                        s.list("downtime")[i].node, s.sub("downtime[\(i)]"),
                        "'\(state)' is not a state this machine can be in (\(known.sorted().joined(separator: ", ")))")
                }
                machine.state = rule
            }
        }
        for item in m.list("counters") {
            guard
                let c = MapNode(
                    item.node, path: item.path, reader: reader,
                    allowed: ["tag", "event", "unit", "rollover", "work_order_tag", "min_interval"])
            else { continue }
            let tag = c.string("tag", required: true)
            let event = c.oneOf("event", ["production.completed", "production.scrapped"], required: true)
            guard let tag, let event else { continue }
            var counter = MachineConfig.CounterRule(tag: tag, event: EventType(event))
            counter.unit = c.string("unit") ?? counter.unit
            if let text = c.string("rollover") {
                if let v = UInt64(text), v >= 2 {
                    counter.rollover = v
                } else {
                    reader.report(
                        c["rollover"], c.sub("rollover"), "expected a whole number of at least 2, found '\(text)'")
                }
            }
            counter.workOrderTag = c.string("work_order_tag")
            counter.minInterval = c.duration("min_interval", positive: false) ?? .zero
            machine.counters.append(counter)
        }
        if let w = m.map("work_order", allowed: ["tag"]) { machine.workOrderTag = w.string("tag", required: true) }
        machine.materials = m.list("materials").compactMap { parseMaterial($0.node, $0.path, reader) }
        machine.quality = m.list("quality").compactMap { parseQualityCheck($0.node, $0.path, reader, types: types) }
        var names = Set<String>()
        for item in m.list("quality") {
            guard let node = item.node.mapping?["name"], let name = node.string, !names.insert(name).inserted
            else { continue }
            reader.report(node, "\(item.path).name", "the name '\(name)' is used twice on this machine")
        }
        return machine
    }

    static func parseMaterial(_ node: ConfigNode, _ path: String, _ reader: ConfigReader) -> MachineConfig.MaterialRule?
    {
        guard
            let c = MapNode(
                node, path: path, reader: reader,
                allowed: ["tag", "material", "material_tag", "lot_tag", "unit", "rollover", "min_interval"])
        else { return nil }
        let tag = c.string("tag", required: true)
        let unit = c.string("unit", required: true)
        var material: MachineConfig.MaterialRule.Material?
        switch (c.string("material"), c.string("material_tag")) {
        case let (fixed?, nil): material = .fixed(fixed)
        case let (nil, tag?): material = .tag(tag)
        default:
            reader.report(
                node, path, "give either 'material' (the ERP item number) or 'material_tag' (a string tag naming it)")
        }
        var rollover: Double?
        if let text = c.string("rollover") {
            if let v = Double(text), v.isFinite, v > 0 {
                rollover = v
            } else {
                reader.report(c["rollover"], c.sub("rollover"), "expected a positive number, found '\(text)'")
            }
        }
        guard let tag, let unit, let material else { return nil }
        return MachineConfig.MaterialRule(
            tag: tag, material: material, lotTag: c.string("lot_tag"), unit: unit, rollover: rollover,
            minInterval: c.duration("min_interval", positive: false) ?? .zero)
    }

    static func parseQualityCheck(
        _ node: ConfigNode, _ path: String, _ reader: ConfigReader,
        types: [String: TagConfig.ValueType]
    ) -> MachineConfig.QualityCheck? {
        guard
            let q = MapNode(
                node, path: path, reader: reader,
                allowed: ["name", "tag", "low", "high", "hysteresis", "min_duration", "severity", "reason_tag"])
        else { return nil }
        let name = q.string("name", required: true)
        let tag = q.string("tag", required: true)
        let (low, high) = (q.double("low"), q.double("high"))
        let hysteresis = q.double("hysteresis")
        func text(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
        var condition = MachineConfig.QualityCheck.Condition.flag
        if q.has("low") || q.has("high") {
            if let low, let high, low > high {
                reader.report(q["low"], q.sub("low"), "'low' (\(text(low))) is above 'high' (\(text(high)))")
            } else if let hysteresis, hysteresis < 0 {
                reader.report(q["hysteresis"], q.sub("hysteresis"), "must not be negative, found \(text(hysteresis))")
            } else if let low, let high, let hysteresis, 2 * hysteresis > high - low {
                reader.report(
                    q["hysteresis"], q.sub("hysteresis"),
                    "\(text(hysteresis)) is larger than the band allows: [\(text(low)), \(text(high))] narrowed by it on "
                        + "both sides is empty, so the exception would never clear (at most \(text((high - low) / 2)))")
            }
            condition = .limits(low: low, high: high, hysteresis: hysteresis ?? 0)
        } else if let tag, let type = types[tag], type != .bool {
            reader.report(node, path, "a limit check needs 'low' or 'high' ('\(tag)' is \(type), not a bool tag)")
        } else if q.has("hysteresis") {
            reader.report(q["hysteresis"], q.sub("hysteresis"), "a bool check has no limits to be back inside of")
        }
        var check = MachineConfig.QualityCheck(name: name ?? "", tag: tag ?? "", condition: condition)
        check.minDuration = q.duration("min_duration", positive: false) ?? .zero
        if let severity = q.oneOf("severity", ["minor", "major", "critical"]) {
            check.severity = .init(rawValue: severity)!
        }
        check.reasonTag = q.string("reason_tag")
        guard name != nil, tag != nil else { return nil }
        return check
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
