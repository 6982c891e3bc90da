import EdgeAgentCore
import Foundation

extension ConfigLoader {
    static func parseDevice(_ node: ConfigNode, _ path: String, _ reader: ConfigReader) -> DeviceConfig? {
        guard let m = MapNode(node, path: path, reader: reader, allowed: ["name", "modbus", "poll_interval", "tags"])
        else { return nil }
        let name = m.string("name", required: true)
        var transport: DeviceConfig.Transport?
        var device = DeviceConfig(name: name ?? "", transport: .tcp(host: "", port: 502))
        if let mb = m.map(
            "modbus", allowed: ["tcp", "rtu", "unit_id", "timeout", "max_gap", "max_registers_per_read"], required: true
        ) {
            if mb.has("tcp") == mb.has("rtu") {
                reader.report(mb.node, mb.sub("tcp"), "give exactly one of 'tcp' or 'rtu'")
            }
            if let tcp = mb.map("tcp", allowed: ["host", "port"]) {
                if let host = tcp.string("host", required: true) {
                    transport = .tcp(host: host, port: tcp.int("port", in: 1...65535) ?? 502)
                }
            }
            if let rtu = mb.map("rtu", allowed: ["device", "baud", "parity", "data_bits", "stop_bits"]) {
                if let dev = rtu.string("device", required: true) {
                    transport = .rtu(
                        device: dev, baud: rtu.int("baud", in: 300...921_600) ?? 19200,
                        parity: rtu.oneOf("parity", ["none", "even", "odd"]).flatMap(DeviceConfig.Parity.init) ?? .none,
                        dataBits: rtu.int("data_bits", in: 5...8) ?? 8, stopBits: rtu.int("stop_bits", in: 1...2) ?? 1)
                }
            }
            device.unitID = mb.int("unit_id", in: 0...255) ?? 1
            device.timeout = mb.duration("timeout") ?? device.timeout
            device.maxGap = mb.int("max_gap", in: 0...125) ?? device.maxGap
            device.maxRegistersPerRead = mb.int("max_registers_per_read", in: 1...125) ?? device.maxRegistersPerRead
        }
        device.pollInterval = m.duration("poll_interval") ?? device.pollInterval
        device.tags = m.list("tags").compactMap { parseTag($0.node, $0.path, reader) }
        if !m.has("tags") { m.missing("tags") }
        guard let name, let transport else { return nil }
        device.name = name
        device.transport = transport
        return device
    }

    static func parseTag(_ node: ConfigNode, _ path: String, _ reader: ConfigReader) -> TagConfig? {
        let keys = [
            "name", "area", "address", "type", "order", "scale", "offset", "deadband", "publish", "bit", "length",
        ]
        guard let m = MapNode(node, path: path, reader: reader, allowed: keys) else { return nil }
        let name = m.string("name", required: true)
        if let name, name.contains(".") || name.isEmpty {
            reader.report(
                m["name"], m.sub("name"), "a tag name may not contain '.'; it is referred to as DEVICE.\(name)")
        }
        let area = m.oneOf("area", TagConfig.Area.allCases.map(\.rawValue), required: true).flatMap(TagConfig.Area.init)
        let address = m.int("address", in: 0...65535, required: true)
        let type = m.oneOf("type", TagConfig.ValueType.allCases.map(\.rawValue), required: true).flatMap(
            TagConfig.ValueType.init)
        guard let name, let area, let address, let type else { return nil }
        var tag = TagConfig(name: name, area: area, address: address, type: type)
        if let order = m.oneOf("order", TagConfig.ByteOrder.allCases.map(\.rawValue)) {
            tag.order = .init(rawValue: order)!
        }
        tag.scale = m.double("scale") ?? 1
        tag.offset = m.double("offset") ?? 0
        tag.deadband = m.double("deadband") ?? 0
        if let publish = m.oneOf("publish", ["never", "on_change"]) { tag.publish = .init(rawValue: publish)! }
        tag.bit = m.int("bit", in: 0...15)
        tag.length = m.int("length", in: 1...125)
        if (area == .coil || area == .discrete) && type != .bool {
            reader.report(m["type"], m.sub("type"), "a \(area.rawValue) holds one bit: its type must be bool")
        }
        if tag.bit != nil && (type != .bool || area == .coil || area == .discrete) {
            reader.report(m["bit"], m.sub("bit"), "'bit' picks one bit of a holding or input register into a bool tag")
        }
        if type == .string && tag.length == nil { m.missing("length") }
        if type != .string && tag.length != nil {
            reader.report(m["length"], m.sub("length"), "'length' (in registers) applies to string tags only")
        }
        if m.has("order") && type.registers < 2 {
            reader.report(m["order"], m.sub("order"), "'order' applies to 32- and 64-bit types only")
        }
        return tag
    }

    static func parseHistorian(_ node: ConfigNode, _ path: String, _ reader: ConfigReader) -> HistorianConfig? {
        let keys = [
            "name", "directory", "pattern", "layout", "delimiter", "decimal", "encoding", "timestamp", "tag_column",
            "value_column", "quality_column", "good_qualities", "tags", "settle", "on_success",
        ]
        guard let m = MapNode(node, path: path, reader: reader, allowed: keys) else { return nil }
        let name = m.string("name", required: true)
        let directory = m.string("directory", required: true)
        let ts = m.map("timestamp", allowed: ["column", "format", "timezone"], required: true)
        let column = ts?.string("column", required: true)
        guard let name, let directory, let column else { return nil }
        var h = HistorianConfig(name: name, directory: directory, timestampColumn: column)
        h.pattern = m.string("pattern") ?? h.pattern
        if let layout = m.oneOf("layout", ["long", "wide"]) { h.layout = .init(rawValue: layout)! }
        for (key, keyPath) in [("delimiter", \HistorianConfig.delimiter), ("decimal", \HistorianConfig.decimal)] {
            guard let text = m.string(key) else { continue }
            if text.count == 1 {
                h[keyPath: keyPath] = text.first!
            } else {
                reader.report(m[key], m.sub(key), "expected one character, found '\(text)'")
            }
        }
        if let encoding = m.oneOf("encoding", ["utf-8", "latin1"]) { h.encoding = .init(rawValue: encoding)! }
        h.timestampFormat = ts?.string("format") ?? h.timestampFormat
        if let tz = ts?.string("timezone") {
            if TimeZone(identifier: tz) == nil {
                reader.report(
                    ts?["timezone"], ts!.sub("timezone"),
                    "unknown time zone '\(tz)' (use an IANA name such as Europe/Berlin)")
            }
            h.timezone = tz
        }
        h.tagColumn = m.string("tag_column")
        h.valueColumn = m.string("value_column")
        h.qualityColumn = m.string("quality_column")
        h.goodQualities = m.strings("good_qualities") ?? []
        h.tags = m.pairs("tags").map { ($0.key, $0.value) }
        if !m.has("tags") { m.missing("tags") }
        h.settle = m.duration("settle", positive: false) ?? h.settle
        if let onSuccess = m.oneOf("on_success", ["archive", "delete"]) { h.onSuccess = .init(rawValue: onSuccess)! }
        if h.layout == .long {
            if h.tagColumn == nil { m.missing("tag_column") }
            if h.valueColumn == nil { m.missing("value_column") }
        }
        return h
    }
}
