/// Checks that span sections: unique names, and that every tag a machine reads is fed by a device or a historian.
struct ConfigCrossCheck {
    let config: AgentConfig
    let top: MapNode

    func run() {
        unique(config.devices.map(\.name), "devices")
        unique(config.historian.map(\.name), "historian")
        unique(config.machines.map(\.name), "machines")
        unique(config.sinks.map(\.name), "sinks")
        for (d, device) in config.devices.enumerated() {
            var seen = Set<String>()
            for (t, tag) in device.tags.enumerated() where !seen.insert(tag.name).inserted {
                report("devices", [d, "tags", t], "name", "a tag named '\(tag.name)' is already defined on device \(device.name)")
            }
        }
        let fed = Set(config.devices.flatMap { device in device.tags.map { "\(device.name).\($0.name)" } }
            + config.historian.flatMap { $0.tags.map(\.tag) })
        for (i, machine) in config.machines.enumerated() {
            for tag in machine.state?.tags ?? [] where !fed.contains(tag) {
                report("machines", [i, "state"], nil, "tag '\(tag)' is read by no device and mapped by no historian")
            }
            for (c, counter) in machine.counters.enumerated() {
                for tag in [counter.tag] + (counter.workOrderTag.map { [$0] } ?? []) where !fed.contains(tag) {
                    report("machines", [i, "counters", c], "tag", "tag '\(tag)' is read by no device and mapped by no historian")
                }
            }
        }
    }

    private func unique(_ names: [String], _ section: String) {
        var seen = Set<String>()
        for (i, name) in names.enumerated() where !seen.insert(name).inserted {
            report(section, [i], "name", "the name '\(name)' is used twice in \(section)")
        }
    }

    /// Reports at the node found by walking `section` then `steps` (list indexes and keys).
    private func report(_ section: String, _ steps: [Any], _ key: String?, _ message: String) {
        var node = top[section]
        var path = section
        for step in steps {
            if let i = step as? Int {
                node = node?.sequence.flatMap { i < $0.count ? $0[i] : nil }
                path += "[\(i)]"
            } else if let k = step as? String {
                node = node?.mapping?[k]
                path += ".\(k)"
            }
        }
        if let key {
            node = node?.mapping?[key] ?? node
            path += ".\(key)"
        }
        top.reader.report(node, path, message)
    }
}
