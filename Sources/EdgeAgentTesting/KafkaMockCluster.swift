import Foundation

/// librdkafka's mock cluster (`kafka-mock`, built beside the agent from Tests/KafkaMock) in a
/// process of its own: a Kafka protocol peer with brokers to take down and bring back, leaders
/// to move and errors to inject. Read with `kcat`, as the middleware's consumer would.
///
/// The mock is not a broker: it has no TLS, does not hide aborted or open transactions from a
/// fetch (`read_committed`) and does not fence a running producer.
public final class KafkaMockCluster: Sendable {
    public let bootstrap: String
    public let directory: TemporaryDirectory
    private let process: KafkaMockProcess

    /// Starts `brokers` brokers and creates `topics` (name, partitions), each replicated on every broker.
    public init(directory: TemporaryDirectory, brokers: Int = 3, topics: [(String, Int)]) async throws {
        self.directory = directory
        process = try await KafkaMockProcess([String(brokers)], directory: directory, name: "kafka-mock")
        guard process.first.contains(":") else { throw TestFailure("kafka-mock printed no bootstrap servers") }
        bootstrap = process.first
        for (topic, partitions) in topics { try await command("topic \(topic) \(partitions) \(brokers)") }
    }

    /// Sends one command (see Tests/KafkaMock/main.c) and waits for its answer.
    public func command(_ line: String) async throws { try await process.command(line) }

    /// Closes a broker's connections and refuses new ones (brokers are numbered from 1).
    public func down(_ broker: Int) async throws { try await command("down \(broker)") }
    public func up(_ broker: Int) async throws { try await command("up \(broker)") }
    public func leader(topic: String, partition: Int, broker: Int) async throws {
        try await command("leader \(topic) \(partition) \(broker)")
    }
    /// Fails the next `count` Produce requests (to `broker`, or to any) with Kafka error `code`.
    public func failProduce(count: Int, code: Int, broker: Int? = nil) async throws {
        try await command("errors 0 \(count) \(code)" + (broker.map { " \($0)" } ?? ""))
    }

    public struct Record: Sendable {
        public var partition: Int
        public var key: String
        /// `name=value` pairs, comma-separated, as kcat prints them.
        public var headers: String
        public var value: String
    }

    /// Every record of `topic` (or of one `partition`), partition by partition in offset order
    /// (`kcat -C -e`); through `relay`, those a `read_committed` consumer sees.
    public func records(
        topic: String, partition: Int? = nil, readCommittedThrough relay: KafkaTransactionRelay? = nil
    ) async throws -> [Record] {
        let isolation = relay == nil ? [] : ["-X", "isolation.level=read_committed"]
        let only = partition.map { ["-p", String($0)] } ?? []
        let result = try await runToEnd(
            "/usr/bin/kcat",
            ["-C", "-b", relay?.bootstrap ?? bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"] + only + isolation
                + ["-f", "%p\t%k\t%h\t%s\n"],
            directory: directory)
        guard result.status == 0 else { throw TestFailure("kcat failed: \(result.stderr)") }
        return result.stdout.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, let partition = Int(parts[0]) else { return nil }
            return Record(
                partition: partition, key: String(parts[1]), headers: String(parts[2]), value: String(parts[3]))
        }
    }

    /// Writes one record (not in a transaction) with `kcat -P`, as another producer would.
    public func produce(topic: String, key: String, value: String) async throws {
        let file = directory.write("kcat-\(UUID().uuidString).in", "\(key)\t\(value)\n")
        let result = try await runToEnd(
            "/usr/bin/kcat", ["-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-l", file], directory: directory)
        guard result.status == 0 else { throw TestFailure("kcat -P failed: \(result.stderr)") }
    }

    /// Ends the cluster (it stops when its input closes).
    public func stop() async { await process.stop() }
}

/// A transactional producer in a process of its own (`kafka-mock txn`), for hand-made
/// transactions: what the relay must show or hide.
public final class KafkaTransactionalProducer: Sendable {
    private let process: KafkaMockProcess

    /// Starts the producer and waits for `init_transactions` (which fences an earlier producer of the same id).
    public init(bootstrap: String, topic: String, transactionalID: String, directory: TemporaryDirectory) async throws {
        process = try await KafkaMockProcess(
            ["txn", bootstrap, topic, transactionalID], directory: directory, name: "txn-\(transactionalID)")
        guard process.first == "ready" else { throw TestFailure("kafka-mock txn did not start: \(process.first)") }
    }

    public func begin() async throws { try await process.command("begin") }
    /// Queues a record; `flush()` puts it in the log without ending the transaction.
    public func produce(key: String, value: String) async throws {
        try await process.command("produce \(key) \(value)")
    }
    public func flush() async throws { try await process.command("flush") }
    public func commit() async throws { try await process.command("commit") }
    public func abort() async throws { try await process.command("abort") }
    /// Ends the process without ending its transaction, as a kill -9 would.
    public func crash() async { await process.stop() }
}

/// A `kafka-mock` process: the first line it prints, then one command a line on its input,
/// each answered with one line, "ok" or "error ...". It ends when its input closes.
final class KafkaMockProcess: @unchecked Sendable {
    // @unchecked: `process` and `input` are set up in `init` and afterwards only written to or
    // signalled; commands come from the test's one task, each waiting for its answer.
    let first: String
    private let process = Process()
    private let input: FileHandle
    private let outputPath: String
    private var answers = 0

    init(_ arguments: [String], directory: TemporaryDirectory, name: String) async throws {
        outputPath = directory.file("\(name).stdout")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let pipe = Pipe()
        input = pipe.fileHandleForWriting
        let program = URL(fileURLWithPath: Paths.edgeAgent).deletingLastPathComponent().appendingPathComponent(
            "kafka-mock")
        process.executableURL = program
        process.arguments = arguments
        process.standardInput = pipe
        process.standardOutput = FileHandle(forWritingAtPath: outputPath)
        process.standardError = FileHandle(forWritingAtPath: directory.file("\(name).stderr"))
        try process.run()
        let path = outputPath
        let started = await eventually(timeout: .seconds(20)) { !(Self.lines(path).first ?? "").isEmpty }
        guard started, let first = Self.lines(path).first else { throw TestFailure("\(name) printed nothing") }
        self.first = first
    }

    private static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func command(_ line: String) async throws {
        input.write(Data((line + "\n").utf8))
        answers += 1
        let path = outputPath, index = answers
        let answered = await eventually(timeout: .seconds(20)) { Self.lines(path).count > index }
        guard answered else { throw TestFailure("kafka-mock did not answer '\(line)'") }
        let answer = Self.lines(path)[index]
        guard answer == "ok" else { throw TestFailure("kafka-mock: '\(line)': \(answer)") }
    }

    func stop() async {
        try? input.close()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
