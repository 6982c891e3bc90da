import EdgeAgentCore
import Foundation
import Yams

/// Reads and validates a configuration file: every issue at once, each with line, column and key path.
public enum ConfigLoader {
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> AgentConfig
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(issues: [
                ConfigIssue(file: path, line: 1, column: 1, path: "", message: "cannot read the file")
            ])
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path, environment: environment)
    }

    public static func parse(_ text: String, file: String, environment: [String: String] = [:]) throws -> AgentConfig {
        let reader = ConfigReader(file: file, environment: environment)
        let root: ConfigNode
        do {
            guard let node = try ConfigNode.compose(text) else {
                throw ConfigError(issues: [
                    ConfigIssue(file: file, line: 1, column: 1, path: "", message: "the file is empty")
                ])
            }
            root = node
        } catch let error as YamlError {
            throw ConfigError(issues: [yamlIssue(error, file: file)])
        }
        let config = parseRoot(root, reader: reader, environment: environment)
        guard reader.issues.isEmpty, let config else {
            throw ConfigError(issues: reader.issues.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return config
    }

    static func yamlIssue(_ error: YamlError, file: String) -> ConfigIssue {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return ConfigIssue(file: file, line: mark.line, column: mark.column, path: "", message: "YAML: \(problem)")
        default:
            return ConfigIssue(file: file, line: 1, column: 1, path: "", message: "YAML: \(error)")
        }
    }

    /// Where the packaged unit's `StateDirectory=edge-agent` lives.
    public static let serviceStateDirectory = "/var/lib/edge-agent"

    static let topKeys = ["version", "agent", "devices", "historian", "machines", "sinks", "outbox"]

    static func parseRoot(_ root: ConfigNode, reader: ConfigReader, environment: [String: String]) -> AgentConfig? {
        guard let top = MapNode(root, path: "", reader: reader, allowed: topKeys) else { return nil }
        if let version = top.string("version", required: true), version != "1" {
            reader.report(top["version"], "version", "this release reads configuration version 1, found '\(version)'")
        }
        let agent = parseAgent(top, environment: environment)
        var config = AgentConfig(
            file: reader.file,
            agent: agent ?? .init(id: "", site: "", line: "", dataDir: "", httpListen: nil),
            outbox: parseOutbox(top))
        config.devices = top.list("devices").compactMap { parseDevice($0.node, $0.path, reader) }
        config.historian = top.list("historian").compactMap { parseHistorian($0.node, $0.path, reader) }
        let types = config.deviceTags.mapValues(\.type)
        config.machines = top.list("machines").compactMap { parseMachine($0.node, $0.path, reader, types: types) }
        config.sinks = top.list("sinks").compactMap { parseSink($0.node, $0.path, reader) }
        ConfigCrossCheck(config: config, top: top).run()
        return agent == nil ? nil : config
    }

    static func parseAgent(_ top: MapNode, environment: [String: String]) -> AgentConfig.Agent? {
        guard let m = top.map("agent", allowed: ["id", "site", "line", "data_dir", "http"], required: true) else {
            return nil
        }
        let id = m.string("id", required: true)
        if let id, id.isEmpty || !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
            m.reader.report(m["id"], m.sub("id"), "may hold only letters, digits, '.', '_' and '-', found '\(id)'")
        }
        let site = m.string("site", required: true)
        let line = m.string("line", required: true)
        // Unset: the service's state directory; from an operator's shell (no $STATE_DIRECTORY),
        // the packaged service's one if it is there, so `outbox status` finds the same database.
        let dataDir =
            m.string("data_dir") ?? environment["STATE_DIRECTORY"]?.split(separator: ":").first.map(String.init)
            ?? (FileManager.default.fileExists(atPath: serviceStateDirectory) ? serviceStateDirectory : "./data")
        var listen: String? = "127.0.0.1:9108"
        if let http = m.map("http", allowed: ["listen"]), let value = http.string("listen") {
            if value == "off" {
                listen = nil
            } else if HostPort(value) == nil {
                m.reader.report(http["listen"], http.sub("listen"), "expected HOST:PORT or off, found '\(value)'")
            } else {
                listen = value
            }
        }
        guard let id, let site, let line else { return nil }
        return .init(id: id, site: site, line: line, dataDir: dataDir, httpListen: listen)
    }

    static func parseOutbox(_ top: MapNode) -> AgentConfig.Outbox {
        var outbox = AgentConfig.Outbox()
        guard let m = top.map("outbox", allowed: ["sync", "max_size", "retain_delivered"]) else { return outbox }
        if let sync = m.oneOf("sync", ["full", "normal"]) { outbox.sync = .init(rawValue: sync)! }
        if let size = m.size("max_size", minimum: 1 << 20) { outbox.maxSize = size }
        if let retain = m.duration("retain_delivered", positive: false) { outbox.retainDelivered = retain }
        return outbox
    }
}
