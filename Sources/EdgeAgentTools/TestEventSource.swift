import EdgeAgent
import EdgeAgentCore
import Logging
import ServiceLifecycle

/// A generated event stream for tests and benchmarks (`run --inject-events`): events numbered
/// 1...total, `tag.changed` (low: dropped by a full outbox) or of another type (`--inject-type
/// production.completed`: critical, so a full outbox pauses the source instead). Its progress is
/// producer state, stored in the same transaction as the events, so after a crash it goes on
/// exactly where the outbox left off.
public struct TestEventSource: Service {
    public struct Options: Sendable {
        public var total: Int
        public var rate: Double
        public var batch: Int
        public var type: EventType
        /// Event n is about subject `test.source` or, with several, `test.source.{n % subjects}`
        /// (a Kafka sink keys by subject: several spread the events over partitions).
        public var subjects: Int
        public init(total: Int, rate: Double = 0, batch: Int = 100, type: EventType = .tagChanged, subjects: Int = 1) {
            self.total = total
            self.rate = rate
            self.batch = batch
            self.type = type
            self.subjects = subjects
        }
    }

    static let stateKey = "test_source.appended"
    let options: Options
    let writer: OutboxWriter
    let logger: Logger

    public init(options: Options, writer: OutboxWriter, logger: Logger) {
        self.options = options
        self.writer = writer
        self.logger = logger
    }

    public func run() async throws {
        var appended = Int(writer.storedState[Self.stateKey] ?? "") ?? 0
        while appended < options.total, !Task.isShuttingDownGracefully {
            let count = min(options.batch, options.total - appended)
            let now = Timestamp.now()
            let events = (appended + 1...appended + count).map { n in
                Event(
                    type: options.type,
                    subject: options.subjects > 1 ? "test.source.\(n % options.subjects)" : "test.source",
                    time: now,
                    data: ["tag": "test.source", "value": .int(Int64(n)), "quality": "good"])
            }
            do {
                try await writer.append(events, state: [(Self.stateKey, String(appended + count))])
                appended += count
            } catch let error as OutboxError where error.code == .full {
                logger.warning("Outbox full; acquisition paused.")
                try await Task.sleep(for: .seconds(1))
                continue
            }
            if options.rate > 0 { try await Task.sleep(for: .milliseconds(Int64(Double(count) / options.rate * 1000))) }
        }
        logger.info("Test source done.", metadata: ["appended": "\(appended)"])
        try? await gracefulShutdown()
    }
}
