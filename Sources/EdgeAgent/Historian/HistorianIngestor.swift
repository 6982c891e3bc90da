import EdgeAgentCore
import Foundation
import Logging
import ServiceLifecycle

/// One per `historian` folder: the driver of `HistorianFileStateMachine`, which holds the rules
/// (settle, exactly once, resume, duplicates, rejections, retries). It lists the folder, reads,
/// commits and moves as the machine says, and tells it what it found.
///
/// Pass one reads the whole file (every row parsed on the folder's thread, the SHA-256 beside it
/// on the file thread, which also parses a large file's tail), so a malformed file is rejected
/// before any of its rows becomes an event;
/// pass two (on the file thread) sends the readings in chunks cut at a time boundary, each
/// committed with what the machine says. A file is read through one descriptor from pass one to
/// its move, and only the bytes pass one checked (`OpenFile`), so what an exporter does to it
/// meanwhile never turns an unchecked row into an event.
public final class HistorianIngestor: Service {
    typealias Machine = HistorianFileStateMachine

    public let config: HistorianConfig
    let bus: SignalBus
    let writer: OutboxWriter
    /// The tags the rules read as text, and those they read or publish (`RuleSet`).
    let textTags: Set<String>
    let reads: Set<String>
    let logger: Logger
    /// Samples or rows per committed chunk, whichever comes first (cut at the next time boundary).
    let chunkSamples: Int
    /// The time since the ingestor was made, on its clock (the machine's time), and a wait on it.
    private let now: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async throws -> Void

    public init(
        config: HistorianConfig, bus: SignalBus, writer: OutboxWriter, rules: RuleSet, logger: Logger,
        chunkSamples: Int = 20_000, clock: any Clock<Duration> = ContinuousClock()
    ) {
        self.config = config
        self.bus = bus
        self.writer = writer
        textTags = rules.textTags
        reads = rules.reads
        var logger = logger
        logger[metadataKey: "source"] = "\(config.name)"
        self.logger = logger
        self.chunkSamples = chunkSamples
        (now, sleep) = Self.timing(clock)
    }

    private static func timing(_ clock: some Clock<Duration>) -> (
        @Sendable () -> Duration, @Sendable (Duration) async throws -> Void
    ) {
        let origin = clock.now
        return ({ origin.duration(to: clock.now) }, { try await clock.sleep(for: $0) })
    }

    /// Where the readings of a file not in time order are sorted (`SampleSort`).
    var sortDirectory: String {
        writer.options.directory + "/historian-sort/" + config.name.replacingOccurrences(of: "/", with: "_")
    }

    public func run() async throws {
        let reader = try await Confined(opening: { [options = writer.options] in
            try OutboxDatabase.openExisting(options)
        })
        // Hashes a file while the folder's thread parses it, then reads it again for pass two.
        let fileThread = Confined(())
        do {
            try await untilGracefulShutdown {
                let folder = try await self.openFolder()
                do {
                    try await self.watch(Threads(folder: folder, file: fileThread, reader: reader))
                } catch {
                    await folder.shutdown()
                    throw error
                }
                await folder.shutdown()
            }
        } catch {
            await fileThread.shutdown()
            await reader.shutdown()
            throw error
        }
        await fileThread.shutdown()
        await reader.shutdown()
    }

    /// Where the blocking work runs: the folder (watching, parsing pass one, moving files), the
    /// file (hashing, reading pass two) and the reading connection to the outbox.
    struct Threads {
        var folder: Confined<DropDirectory>
        var file: Confined<Void>
        var reader: Confined<OutboxDatabase>
    }

    /// A folder that cannot be created or watched (permissions, a missing mount) is this input's
    /// problem only: logged once, tried again every ten seconds.
    private func openFolder() async throws -> Confined<DropDirectory> {
        let config = self.config
        var logged = false
        while true {
            do {
                return try await Confined(opening: {
                    try DropDirectory(directory: config.directory, pattern: config.pattern)
                })
            } catch {
                if !logged {
                    logger.error(
                        "Historian folder cannot be used; trying again every 10 s.",
                        metadata: ["directory": "\(config.directory)", "error": "\(error)"])
                }
                logged = true
                try await sleep(.seconds(10))
            }
        }
    }

    private func watch(_ threads: Threads) async throws {
        let sorted = sortDirectory
        try await threads.file.run { _ in try? FileManager.default.removeItem(atPath: sorted) }  // a crash's runs
        var machine = Machine(config: config, textTags: textTags)
        var first = true
        while !Task.isCancelled {
            let entries = try await threads.folder.run { [first] in $0.list(waiting: !first) }
            first = false
            try await perform(machine.listed(entries, now: now()), &machine, threads)
        }
    }

    /// A file in hand: open, and what pass one hashed.
    struct Taken {
        var file: OpenFile
        var digests: Digests
    }

    /// Performs `actions` in order, with those the machine answers with.
    private func perform(
        _ actions: [Machine.Action], _ machine: inout Machine, _ threads: Threads, _ taken: Taken? = nil
    ) async throws {
        for action in actions {
            switch action {
            case let .log(entry):
                let level: Logger.Level =
                    switch entry.level {
                    case .info: .info
                    case .notice: .notice
                    case .warning: .warning
                    case .error: .error
                    }
                logger.log(
                    level: level, Logger.Message(stringLiteral: entry.message),
                    metadata: entry.metadata.mapValues { .string($0) })
            case let .count(result):
                Telemetry.historianFile(source: config.name, result: result)
            case let .check(name):
                guard !Task.isCancelled else { return }
                try await take(name, &machine, threads)
            case let .commit(commit):
                try await send(samples: [], commit)
            case .loadProgress:
                let stored = try await threads.reader.run { try $0.loadState() }
                try await perform(machine.progressLoaded(stored), &machine, threads, taken)
            case let .digestPrefixes(lengths):
                guard let file = taken?.file else { continue }
                let digests = try await threads.file.run { _ in lengths.map { try? Self.digest(file, upTo: $0) } }
                try await perform(machine.prefixesDigested(digests), &machine, threads, taken)
            case let .feed(from, ordered):
                guard let taken else { continue }
                let answer: [Machine.Action]
                do {
                    let fed = try await feed(taken, machine, threads.file, skipping: from, ordered: ordered)
                    let change = try await threads.folder.run { _ in taken.file.change() }
                    answer = machine.fed(rows: fed.rows, changed: fed.changed ?? change)
                } catch  where !(error is CancellationError) && !Task.isCancelled {
                    answer = machine.feedFailed(reason: "\(error)", now: now())
                }
                try await perform(answer, &machine, threads, taken)
            case let .move(name, destination):
                guard let file = taken?.file else { continue }
                let path = config.directory + "/" + name
                let moved = try await threads.folder.run { _ in Self.move(path, to: destination, file) }
                try await perform(machine.moved(name, ok: moved, now: now()), &machine, threads, taken)
            }
        }
    }

    /// Opens file `name`, checks it (pass one), and hands the machine what it found.
    private func take(_ name: String, _ machine: inout Machine, _ threads: Threads) async throws {
        let path = config.directory + "/" + name
        let file: OpenFile
        switch try await threads.folder.run({ _ in Result { try OpenFile(path) } }) {
        case let .success(opened): file = opened
        case let .failure(error):
            return try await perform(machine.unreadable(name, reason: "\(error)", now: now()), &machine, threads)
        }
        defer { file.close() }  // every read of it has ended when `perform` returns
        do {
            let (check, digests) = try await checkWhole(file, threads)
            let known = digests.file.isEmpty ? nil : try await known(digests.file, name: name, threads.reader)
            let actions = machine.checked(
                name, check, hash: digests.file, length: file.length, known: known, now: now())
            try await perform(actions, &machine, threads, Taken(file: file, digests: digests))
        } catch {
            if Task.isCancelled { machine.stopped() }  // the file is checked again at the next start
            throw error
        }
    }

    /// Pass one: the file parsed and hashed at once; a large one takes a while, so a stop ends
    /// it at the next piece read. A file past `minimumSplitLength` is parsed in two parts at once
    /// (`splitPoint`): the head on the folder's thread, the tail on the file's thread beside the
    /// hash. The tail counts only if the head's reader ends at a record's start where the tail
    /// began (a quoted field may hold line breaks); else the file is parsed again whole, so the
    /// check is always what parsing it whole finds.
    private func checkWhole(_ file: OpenFile, _ threads: Threads) async throws -> (Machine.Check, Digests) {
        let config = self.config, textTags = self.textTags
        let stop = Stop()
        let split = try await threads.folder.run { _ in Self.splitPoint(file, config: config) }
        let (hashed, checked) = try await withTaskCancellationHandler {
            async let hashing = threads.file.run { _ in
                Result {
                    let tail = split.map { Self.TailCheck(split: $0, config: config, textTags: textTags) }
                    return (try Self.digests(file, stop: stop, tail: tail), tail?.finish())
                }
            }
            let head = try await threads.folder.run { _ in
                guard let split else {
                    return Part.ended(Self.check(file, config: config, textTags: textTags, stop: stop))
                }
                return Self.checkHead(file, upTo: split, config: config, textTags: textTags, stop: stop)
            }
            let hashed = try await hashing
            if let checked = Self.joined(head: head, tail: try? hashed.get().1) { return (hashed, checked) }
            let checked = try await threads.folder.run { _ in
                Self.check(file, config: config, textTags: textTags, stop: stop)
            }
            return (hashed, checked)
        } onCancel: {
            stop.flag.store(true, ordering: .relaxed)
        }
        try Task.checkCancellation()
        switch hashed {
        case let .success((digests, _)):
            // The parse and the hash read the file apart: they saw the same bytes only if it did not change.
            let change = try await threads.folder.run { _ in file.change() }
            return (change.map { .changed($0) } ?? checked, digests)
        case let .failure(error as Changed): return (.changed(error.reason), Digests())
        case let .failure(error): return (.unreadable("\(error)"), Digests())
        }
    }

    /// The outbox's record of the content `hash`, and whether a file named `name` is in the
    /// folders a file goes to.
    private func known(_ hash: String, name: String, _ reader: Confined<OutboxDatabase>) async throws -> Machine.Known?
    {
        guard let record = try await reader.run({ try $0.fileRecord(hash: hash) }) else { return nil }
        let fm = FileManager.default
        return Machine.Known(
            source: record.source, name: record.name, outcome: record.outcome == .ok ? .ok : .rejected,
            config: record.config, inProcessed: fm.fileExists(atPath: config.directory + "/processed/" + name),
            inRejected: fm.fileExists(atPath: config.directory + "/rejected/" + name))
    }

    /// What pass two took: the data rows committed, and why it stopped before the file's end
    /// if its bytes were no longer those pass one checked.
    struct Fed {
        var rows: Int
        var changed: String?
    }

    /// Pass two: the readings in chunks, each committed with what the machine says.
    private func feed(
        _ taken: Taken, _ machine: Machine, _ fileThread: Confined<Void>, skipping skipped: Int, ordered: Bool
    ) async throws -> Fed {
        let config = self.config, textTags = self.textTags, reads = self.reads, chunkSamples = self.chunkSamples
        let sortDirectory = self.sortDirectory
        let (chunks, sink) = AsyncThrowingStream.makeStream(of: Chunk.self, bufferingPolicy: .bufferingOldest(2))
        let stop = Stop()
        // The file is read on its own thread; chunks cross over one at a time (memory stays bounded).
        let producer = Task {
            do {
                try await fileThread.run { _ in
                    try Self.readChunks(
                        taken.file, digests: taken.digests, config: config, textTags: textTags, reads: reads,
                        chunkSamples: chunkSamples, ordered: ordered, skipping: skipped, sortDirectory: sortDirectory,
                        stop: stop
                    ) { chunk in
                        while true {
                            switch sink.yield(chunk) {
                            case .enqueued: return
                            case .dropped: usleep(1000)  // two chunks wait already
                            case .terminated: throw CancellationError()  // the pipeline side stopped
                            @unknown default: throw CancellationError()
                            }
                        }
                    }
                }
                sink.finish()
            } catch {
                sink.finish(throwing: error)
            }
        }
        func consume() async throws -> Fed {
            for try await chunk in chunks {  // `send` resends a refused chunk itself
                let commit = machine.commit(rowsDone: chunk.rowsDone, last: chunk.last, changed: chunk.changed)
                try await send(samples: chunk.samples, commit)
                if chunk.last { return Fed(rows: chunk.rowsDone, changed: chunk.changed) }
            }
            try Task.checkCancellation()  // a stop ends the stream
            throw CSVReader.Malformed(line: 0, column: 0, reason: "the reading ended before the file's end")
        }
        let fed: Result<Fed, any Error>
        do { fed = .success(try await consume()) } catch { fed = .failure(error) }
        stop.flag.store(true, ordering: .relaxed)  // a producer still reading stops at its next piece
        sink.finish()  // or at its next chunk
        await producer.value  // the file is no longer read once this returns: it may be closed
        return try fed.get()
    }

    /// Sends `samples` with `commit` until the pipeline commits them (a full outbox refuses
    /// them: wait, send again).
    private func send(samples: [Sample], _ commit: Machine.Commit) async throws {
        let (acks, ack) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(1))
        let file = commit.record.map {
            FileRecord(
                hash: $0.hash, source: config.name, name: $0.name, rows: $0.rows,
                outcome: $0.outcome == .ok ? .ok : .rejected, config: $0.config)
        }
        let signal = Signal(
            samples: samples, state: commit.state.map { ($0.key, $0.value) }, file: file,
            committed: { ack.yield($0) })
        var iterator = acks.makeAsyncIterator()
        while true {
            await bus.send(signal)
            try Task.checkCancellation()
            guard let committed = await iterator.next() else { throw CancellationError() }
            if committed { return }
            try Task.checkCancellation()
            try await sleep(.seconds(1))
        }
    }
}
