import Clocks
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The messages logged, kept for a test to look at.
final class LoggedMessages: Sendable {
    let list = Mutex<[String]>([])

    func contain(_ text: String) -> Bool { list.withLock { $0.contains { $0.contains(text) } } }
}

struct RecordingLogHandler: LogHandler {
    let messages: LoggedMessages
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { messages.list.withLock { $0.append(event.message.description) } }
}

/// The historian driver on its own clock: a real folder, a real outbox and pipeline, and a test
/// clock, so settle and retry times are checked without waiting for them.
@Suite struct HistorianIngestorTests {
    let dir = TemporaryDirectory()
    let clock = TestClock()
    let messages = LoggedMessages()

    func config(settle: Duration) -> HistorianConfig {
        var config = HistorianConfig(name: "drop", directory: dir.path + "/drop", timestampColumn: "Timestamp")
        config.timestampFormat = "unix_s"
        config.tagColumn = "TagName"
        config.valueColumn = "Value"
        config.tags = [(source: "P1.COUNT", tag: "press-1.count")]
        config.settle = settle
        return config
    }

    func processed() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path + "/drop/processed")) ?? []).sorted()
    }

    /// Runs the pipeline and the ingestor while `body` drives the test clock.
    func running(_ config: HistorianConfig, _ body: () async throws -> Void) async throws {
        let writer = try await OutboxWriter(options: options(dir))
        let bus = SignalBus()
        let rules = RuleSet(machines: [
            RuleSet.Machine(name: "press-1", counters: [RuleSet.Counter(tag: "press-1.count", range: 1 << 32)])
        ])
        let logger = Logger(label: "test") { [messages] _ in RecordingLogHandler(messages: messages) }
        let pipeline = Pipeline(rules: rules, bus: bus, writer: writer, logger: logger, tick: nil)
        let ingestor = HistorianIngestor(
            config: config, bus: bus, writer: writer, rules: rules, logger: logger, clock: clock)
        try await whileRunning([pipeline, ingestor], logger: logger, body)
        await writer.close()
    }

    /// Advances the test clock in `step`s until `condition` holds (bounded in real time);
    /// returns how far it went, nil if the condition never held.
    func advance(by step: Duration, until condition: () -> Bool) async -> Duration? {
        var advanced = Duration.zero
        let held = await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
            if condition() { return true }
            await clock.advance(by: step)
            advanced += step
            return condition()
        }
        return held ? advanced : nil
    }

    @Test func aFileIsTakenOnlyOnceItHasSettledOnTheIngestorsClock() async throws {
        try FileManager.default.createDirectory(atPath: dir.path + "/drop", withIntermediateDirectories: true)
        _ = dir.write("drop/a.csv", "Timestamp,TagName,Value\n1790000000,P1.COUNT,5\n1790000060,P1.COUNT,9\n")
        try await running(config(settle: .seconds(3600))) {
            let advanced = await advance(by: .seconds(600)) { processed() == ["a.csv"] }
            #expect(advanced.map { $0 >= .seconds(3600) } == true, "taken after \(String(describing: advanced))")
        }
    }

    @Test func aFileThatCouldNotBeTakenIsTriedAgainNoSoonerThanItsRetryTimeOnTheIngestorsClock() async throws {
        try FileManager.default.createDirectory(atPath: dir.path + "/drop", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path + "/data", withIntermediateDirectories: true)
        // Where the sort's directory goes, a file: a file not in time order cannot be taken.
        _ = dir.write("data/historian-sort", "")
        _ = dir.write(
            "drop/a.csv",
            "Timestamp,TagName,Value\n1790000060,P1.COUNT,9\n1790000000,P1.COUNT,5\n1790000120,P1.COUNT,12\n")
        try await running(config(settle: .zero)) {
            #expect(await eventually { messages.contain("could not be taken") }, "\(messages.list.withLock { $0 })")
            try FileManager.default.removeItem(atPath: dir.path + "/data/historian-sort")
            let advanced = await advance(by: .milliseconds(100)) { processed() == ["a.csv"] }
            #expect(advanced.map { $0 >= .seconds(5) } == true, "taken again after \(String(describing: advanced))")
        }
    }
}
