import EdgeAgent
import EdgeAgentCore
import Foundation

/// Runs the built `edge-agent` against a sink URL with a generated event stream, as a user would.
public final class AgentHarness: @unchecked Sendable {
    // @unchecked: `child` is replaced only by the test's own task, between runs.
    public let directory: TemporaryDirectory
    public let configPath: String
    public private(set) var child: ChildProcess?
    private var runs = 0

    /// `extraSink` goes inside the sink's `http:` mapping, `sinkLines` below the sink.
    public convenience init(
        sinkURL: String, extraSink: String = "", sinkLines: String = "", outbox: String = "", statusPort: Int? = nil,
        directory: TemporaryDirectory = TemporaryDirectory()
    ) {
        self.init(
            sinks: """
                  - name: mw
                    http: { url: "\(sinkURL)", timeout: 2s\(extraSink) }
                    batch: { max_events: 200, linger: 20ms }
                    retry: { initial: 20ms, max: 300ms }
                \(sinkLines)
                """, outbox: outbox, statusPort: statusPort, directory: directory)
    }

    /// `sinks`: the items of the `sinks:` list, as YAML indented by two.
    public init(
        sinks: String, outbox: String = "", statusPort: Int? = nil, directory: TemporaryDirectory = TemporaryDirectory()
    ) {
        self.directory = directory
        configPath = directory.write(
            "agent.yaml",
            """
            version: 1
            agent:
              id: test-agent
              site: plant-t
              line: line-1
              data_dir: \(directory.path)/data
              http: { listen: "\(statusPort.map { "127.0.0.1:\($0)" } ?? "off")" }
            sinks:
            \(sinks)
            \(outbox)
            """)
    }

    /// Starts the agent appending `events` in total (continuing across restarts).
    public func start(
        events: Int, rate: Double = 0, batch: Int = 100, type: String = "tag.changed", subjects: Int = 1,
        environment: [String: String] = [:]
    ) throws {
        runs += 1
        child = try ChildProcess(
            Paths.edgeAgent,
            [
                "run", "--config", configPath, "--inject-events", String(events),
                "--inject-rate", String(rate), "--inject-batch", String(batch),
                "--inject-type", type, "--inject-subjects", String(subjects),
            ],
            directory: directory, name: "agent-\(runs)", environment: environment)
    }

    public func kill9() async {
        child?.signal(SIGKILL)
        await child?.wait()
    }

    @discardableResult
    public func stop() async -> Int32? {
        child?.signal(SIGTERM)
        return await child?.wait(timeout: .seconds(15))
    }

    /// Runs an `edge-agent` command with this config (`outbox status --json`, ...).
    public func command(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runToEnd(Paths.edgeAgent, arguments + ["--config", configPath], directory: directory)
    }

    public func status() async throws -> OutboxStatus {
        let result = try await command(["outbox", "status", "--json"])
        guard result.status == 0 else { throw TestFailure("outbox status failed: \(result.stderr)") }
        return try JSONDecoder().decode(OutboxStatus.self, from: Data(result.stdout.utf8))
    }

    /// The sequence up to which `sink` has had everything acknowledged (the outbox's cursor).
    public func sinkCursor(_ sink: String) throws -> Int64 {
        let db = try SQLiteConnection(path: directory.path + "/data/outbox.db", readOnly: true)
        let statement = try db.prepare("SELECT cursor FROM sinks WHERE name = ?")
        try statement.bind(sink, at: 1)
        return try statement.step() ? statement.int(0) : 0
    }

    /// Every event in the outbox, in sequence order: (sequence, id, body).
    public func outboxEvents() throws -> [(sequence: Int64, id: String, body: String)] {
        let db = try SQLiteConnection(path: directory.path + "/data/outbox.db", readOnly: true)
        let statement = try db.prepare("SELECT seq, id, body FROM events ORDER BY seq")
        var result: [(Int64, String, String)] = []
        while try statement.step() { result.append((statement.int(0), statement.text(1), statement.text(2))) }
        return result
    }
}

/// What the receiver saw, checked the way the middleware team would check it.
public struct DeliveryCheck {
    public var firstArrivalSequences: [Int64] = []
    public var idsWithTwoContents: [String] = []
    public var uniqueIDs = Set<String>()

    public init(_ events: [[String: Any]]) {
        var contentByID: [String: Data] = [:]
        for event in events {
            let id = event["id"] as! String
            let canonical = try! JSONSerialization.data(withJSONObject: event, options: [.sortedKeys])
            if let seen = contentByID[id] {
                if seen != canonical { idsWithTwoContents.append(id) }
            } else {
                contentByID[id] = canonical
                uniqueIDs.insert(id)
                firstArrivalSequences.append(Int64(event["sequence"] as! String)!)
            }
        }
    }

    public var inOrder: Bool { zip(firstArrivalSequences, firstArrivalSequences.dropFirst()).allSatisfy { $0 < $1 } }
}
