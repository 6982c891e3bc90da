import EdgeAgentCore

/// Checks that span sections, on the YAML nodes themselves (so an entry that failed its own
/// checks is still looked at): unique names, and that every tag a machine reads is fed by a
/// device or a historian.
struct ConfigCrossCheck {
    let config: AgentConfig
    let top: MapNode

    func run() {
        for section in ["devices", "historian", "machines", "sinks"] {
            unique(top.list(section).map { ($0.node, $0.path) }, key: "name", what: "in \(section)")
        }
        for device in top.list("devices") {
            let tags = device.node.mapping?["tags"]?.sequence ?? []
            unique(
                tags.enumerated().map { ($0.element, "\(device.path).tags[\($0.offset)]") }, key: "name",
                what: "on this device")
        }
        let fed = Set(config.deviceTags.keys).union(config.historian.flatMap { $0.tags.map(\.tag) })
        for machine in top.list("machines") {
            let state = machine.node.mapping?["state"]
            var references: [(ConfigNode?, String)] = ["tag", "reason_tag"].map {
                (state?.mapping?[$0], "\(machine.path).state.\($0)")
            }
            for (i, bit) in (state?.mapping?["bits"]?.sequence ?? []).enumerated() {
                references.append((bit.mapping?["tag"], "\(machine.path).state.bits[\(i)].tag"))
            }
            for (i, counter) in (machine.node.mapping?["counters"]?.sequence ?? []).enumerated() {
                for key in ["tag", "work_order_tag"] {
                    references.append((counter.mapping?[key], "\(machine.path).counters[\(i)].\(key)"))
                }
            }
            references.append((machine.node.mapping?["work_order"]?.mapping?["tag"], "\(machine.path).work_order.tag"))
            for (section, keys) in [
                ("materials", ["tag", "material_tag", "lot_tag"]), ("quality", ["tag", "reason_tag"]),
            ] {
                for (i, entry) in (machine.node.mapping?[section]?.sequence ?? []).enumerated() {
                    for key in keys {
                        references.append((entry.mapping?[key], "\(machine.path).\(section)[\(i)].\(key)"))
                    }
                }
            }
            for case let (node?, path) in references {
                guard let tag = node.string, !fed.contains(tag) else { continue }
                top.reader.report(node, path, "tag '\(tag)' is read by no device and mapped by no historian")
            }
        }
    }

    private func unique(_ items: [(node: ConfigNode, path: String)], key: String, what: String) {
        var seen = Set<String>()
        for (node, path) in items {
            guard let nameNode = node.mapping?[key], let name = nameNode.string else { continue }
            if !seen.insert(name).inserted {
                top.reader.report(nameNode, "\(path).\(key)", "the name '\(name)' is used twice \(what)")
            }
        }
    }
}
