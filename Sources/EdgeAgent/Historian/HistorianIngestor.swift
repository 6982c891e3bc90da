import EdgeAgentCore
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// One per `historian` folder: takes each settled file, checks it whole, then feeds its rows to
/// the pipeline as readings, and moves it to `processed/` (or deletes it) or `rejected/`.
///
/// Exactly once per file: pass one reads the whole file (every row parsed on the folder's thread,
/// the SHA-256 beside it on the file thread), so a malformed file is rejected before any of its
/// rows becomes an event; pass two (on the file thread) sends the
/// readings in chunks cut at a time boundary, each committed with the file's progress
/// (`historian.NAME.file.HASH`: rows done) as producer state, the last one with the file's record
/// (and without the progress row). Progress belongs to the content, not to the folder: after a
/// crash a file resumes after its own last committed chunk, whatever files were taken in between
/// (an older one first, say); the same content dropped
/// again, under any name, is found by its hash and skipped. A rejection holds for the
/// configuration it was made under (`fingerprint`): once that changes, the same content is
/// checked again, and taken if it now reads.
public final class HistorianIngestor: Service {
    public let config: HistorianConfig
    let bus: SignalBus
    let writer: OutboxWriter
    let textTags: Set<String>
    let logger: Logger
    /// Samples per committed chunk (cut at the next time boundary).
    let chunkSamples: Int
    /// What decides how this folder's files read (`fingerprint(_:textTags:)`).
    let fingerprint: String

    public init(
        config: HistorianConfig, bus: SignalBus, writer: OutboxWriter, textTags: Set<String>, logger: Logger,
        chunkSamples: Int = 20_000
    ) {
        self.config = config
        self.bus = bus
        self.writer = writer
        self.textTags = textTags
        var logger = logger
        logger[metadataKey: "source"] = "\(config.name)"
        self.logger = logger
        self.chunkSamples = chunkSamples
        fingerprint = Self.fingerprint(config, textTags: textTags)
    }

    /// A digest of everything that decides whether a file reads and what its rows become: the
    /// layout, delimiter, decimal mark, encoding, columns, time format and zone, good qualities,
    /// the tag map and which mapped tags are text. Not the folder, pattern, settle time or what
    /// happens to a file once taken. Stable across runs (sorted, no `hashValue`).
    static func fingerprint(_ config: HistorianConfig, textTags: Set<String>) -> String {
        let tags = config.tags.map { "\($0.source)=\($0.tag)" }.sorted()
        let text = config.tags.map(\.tag).filter(textTags.contains).sorted()
        let parts: [String] =
            [
                config.layout.rawValue, String(config.delimiter), String(config.decimal), config.encoding.rawValue,
                config.timestampColumn, config.timestampFormat, config.timezone, config.tagColumn ?? "",
                config.valueColumn ?? "", config.qualityColumn ?? "",
            ] + config.goodQualities.sorted() + ["tags"] + tags + ["text"] + text
        var hash = SHA256()
        hash.update(Array(parts.joined(separator: "\u{1F}").utf8))
        return String(hash.finalize().prefix(16))
    }

    /// The progress of the file with content `hash`: its data rows committed.
    func progressKey(_ hash: String) -> String { "historian.\(config.name).file.\(hash)" }
    /// Where an earlier release kept the progress of one file per folder ("HASH ROWS").
    var folderProgressKey: String { "historian.\(config.name)" }

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
                    try DropDirectory(directory: config.directory, pattern: config.pattern, settle: config.settle)
                })
            } catch {
                if !logged {
                    logger.error(
                        "Historian folder cannot be used; trying again every 10 s.",
                        metadata: ["directory": "\(config.directory)", "error": "\(error)"])
                }
                logged = true
                try await Task.sleep(for: .seconds(10))
            }
        }
    }

    private func watch(_ threads: Threads) async throws {
        var progress = Progress(writer.storedState, prefix: progressKey(""), folderKey: folderProgressKey)
        while !Task.isCancelled {
            let (paths, links) = try await threads.folder.run { ($0.ready(), $0.takeNewLinks()) }
            for link in links {
                logger.warning(
                    "Historian folder holds a symbolic link; it is never read.", metadata: ["file": "\(link)"])
            }
            for path in paths where !Task.isCancelled {
                let stays = try await ingest(path, threads, progress: &progress)
                try await threads.folder.run { $0.taken(path, parked: stays) }
            }
        }
    }

    /// The files begun and not finished, as stored with their last committed chunks.
    struct Progress: Equatable {
        /// Data rows committed, by content hash.
        var rows: [String: Int] = [:]
        /// The content whose progress is under the folder's key of an earlier release, if any:
        /// that row goes when the file is done.
        var folderKeyHash: String?

        init(_ stored: [String: String], prefix: String, folderKey: String) {
            for (key, value) in stored where key.hasPrefix(prefix) {
                if let done = Int(value) { rows[String(key.dropFirst(prefix.count))] = done }
            }
            let parts = stored[folderKey]?.split(separator: " ") ?? []
            if parts.count == 2, let done = Int(parts[1]) {
                let hash = String(parts[0])
                rows[hash] = max(rows[hash] ?? 0, done)
                folderKeyHash = hash
            }
        }
    }

    /// What pass one found.
    enum Check: Sendable {
        case valid(rows: Int, ordered: Bool)
        case malformed(CSVReader.Malformed)
        case unreadable(String)
    }

    /// Returns whether the file stays where it is (it could not be moved).
    private func ingest(_ path: String, _ threads: Threads, progress: inout Progress) async throws -> Bool {
        let name = (path as NSString).lastPathComponent
        let config = self.config, textTags = self.textTags
        let folder = threads.folder, reader = threads.reader
        async let hashed = threads.file.run { _ in Result { try Self.hash(path) } }
        var check = try await folder.run { _ in Self.check(path, config: config, textTags: textTags) }
        let hash: String
        switch try await hashed {
        case let .success(value): hash = value
        case let .failure(error): (hash, check) = ("", .unreadable("\(error)"))
        }
        switch check {
        case let .unreadable(reason):
            logger.error(
                "Historian file cannot be read; left where it is.", metadata: ["file": "\(name)", "error": "\(reason)"])
            return true
        case let .malformed(problem):
            if let known = try await record(hash, name: name, reader) {
                guard isLeftOver(name, known, .rejected) else {
                    return try await duplicate(path, name: name, of: known, folder: folder)
                }
            } else {
                try await commit(
                    Signal(
                        file: FileRecord(
                            hash: hash, source: config.name, name: name, rows: 0, outcome: .rejected,
                            config: fingerprint)))
            }
            Telemetry.historianFile(source: config.name, result: "rejected")
            logger.error(
                "Historian file rejected; no row of it was used.",
                metadata: [
                    "file": "\(name)", "line": "\(problem.line)", "column": "\(problem.column)",
                    "reason": "\(problem.reason)",
                ])
            return try await folder.run { _ in Self.reject(path, problem: problem) }
        case let .valid(rows, ordered):
            if let known = try await record(hash, name: name, reader) {
                guard isLeftOver(name, known, .ok) else {
                    return try await duplicate(path, name: name, of: known, folder: folder)
                }
                logger.notice(
                    "Historian file was ingested before the agent stopped; only its move was left.",
                    metadata: ["file": "\(name)"])
            } else {
                let resumeAfter = progress.rows[hash] ?? 0
                if resumeAfter > 0 {
                    logger.notice(
                        "Resuming a historian file after its last committed rows.",
                        metadata: ["file": "\(name)", "rows": "\(resumeAfter)"])
                }
                let done: [StateRow] = progress.folderKeyHash == hash ? [(folderProgressKey, nil)] : []
                try await feed(
                    path, on: threads.file, name: name, hash: hash, rows: rows, ordered: ordered, skipping: resumeAfter,
                    done: done)
                progress.rows[hash] = nil
                if progress.folderKeyHash == hash { progress.folderKeyHash = nil }
                logger.info("Historian file ingested.", metadata: ["file": "\(name)", "rows": "\(rows)"])
            }
            Telemetry.historianFile(source: config.name, result: "ok")
            return try await folder.run { _ in Self.finish(path, onSuccess: config.onSuccess) }
        }
    }

    /// The record of the content `hash`, unless it is a rejection under another configuration:
    /// that content is checked again as if new (and its record replaced by the outcome).
    private func record(_ hash: String, name: String, _ reader: Confined<OutboxDatabase>) async throws -> FileRecord? {
        guard let known = try await reader.run({ try $0.fileRecord(hash: hash) }) else { return nil }
        if known.outcome == .rejected, known.config != fingerprint {
            logger.notice(
                "Historian file was rejected under another configuration; checked again.",
                metadata: ["file": "\(name)", "same_as": "\(known.name)"])
            return nil
        }
        return known
    }

    /// Whether a file whose content is recorded is that same file, left in the folder by a stop
    /// (or a crash, or a failed move) between its record's commit and its move: recorded by this
    /// folder under this name with the outcome it has now, and not in the folder that outcome
    /// sends it to. It is then moved as its outcome says, not taken for a duplicate of itself.
    /// (With `on_success: delete` the same content dropped again under the same name cannot be
    /// told from it: it is deleted as well, and nothing is appended either way.)
    private func isLeftOver(_ name: String, _ known: FileRecord, _ outcome: FileRecord.Outcome) -> Bool {
        guard known.source == config.name, known.name == name, known.outcome == outcome else { return false }
        let outcomeFolder =
            known.outcome == .rejected ? "rejected" : config.onSuccess == .archive ? "processed" : nil
        guard let outcomeFolder else { return true }
        return !FileManager.default.fileExists(atPath: config.directory + "/" + outcomeFolder + "/" + name)
    }

    private func duplicate(_ path: String, name: String, of known: FileRecord, folder: Confined<DropDirectory>)
        async throws -> Bool
    {
        Telemetry.historianFile(source: config.name, result: "duplicate")
        logger.warning(
            "Historian file has the same content as one taken before; skipped.",
            metadata: [
                "file": "\(name)", "same_as": "\(known.name)", "outcome": "\(known.outcome.rawValue)",
            ])
        let onSuccess = config.onSuccess
        return try await folder.run { _ in
            known.outcome == .rejected ? Self.move(path, to: "rejected") : Self.finish(path, onSuccess: onSuccess)
        }
    }

    /// Pass two: the readings in chunks, each committed with the file's progress; the last one
    /// with its record, removing its progress row (and the `done` rows).
    private func feed(
        _ path: String, on fileThread: Confined<Void>, name: String, hash: String, rows: Int, ordered: Bool,
        skipping skipped: Int, done: [StateRow]
    ) async throws {
        let config = self.config, textTags = self.textTags, chunkSamples = self.chunkSamples
        let key = progressKey(hash)
        let fingerprint = self.fingerprint
        let (chunks, sink) = AsyncThrowingStream.makeStream(of: Chunk.self, bufferingPolicy: .bufferingOldest(2))
        // The file is read on its own thread; chunks cross over one at a time (memory stays bounded).
        let producer = Task {
            do {
                try await fileThread.run { _ in
                    try Self.readChunks(
                        path, config: config, textTags: textTags, chunkSamples: chunkSamples, ordered: ordered,
                        skipping: skipped
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
        defer { producer.cancel() }
        var committed = skipped
        let finished: [StateRow] = [(key, nil)] + done
        for try await chunk in chunks {  // `commit` resends a refused chunk itself
            let last = chunk.rowsDone == rows
            try await commit(
                Signal(
                    samples: chunk.samples, state: last ? finished : [(key, String(chunk.rowsDone))],
                    file: last
                        ? FileRecord(
                            hash: hash, source: config.name, name: name, rows: rows, outcome: .ok, config: fingerprint)
                        : nil
                ))
            committed = chunk.rowsDone
            if last { break }
        }
        if committed < rows {  // an empty tail: record the file on its own
            try await commit(
                Signal(
                    state: finished,
                    file: FileRecord(
                        hash: hash, source: config.name, name: name, rows: rows, outcome: .ok, config: fingerprint)))
        }
    }

    /// Sends `signal` until the pipeline commits it (a full outbox refuses it: wait, send again).
    private func commit(_ signal: Signal) async throws {
        let (acks, ack) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(1))
        var signal = signal
        signal.committed = { ack.yield($0) }
        var iterator = acks.makeAsyncIterator()
        while true {
            await bus.send(signal)
            try Task.checkCancellation()
            guard let committed = await iterator.next() else { throw CancellationError() }
            if committed { return }
            try Task.checkCancellation()
            try await Task.sleep(for: .seconds(1))
        }
    }

    struct Chunk: Sendable {
        var samples: [Sample]
        /// Data rows of the file consumed once this chunk is committed.
        var rowsDone: Int
    }

    // MARK: - Blocking file work (on the folder's thread)

    /// Reads `path` in 64 KiB pieces, handing each to `body` (the file is never held whole). A
    /// symbolic link (put there after the folder was scanned) or anything but a regular file is
    /// not opened.
    static func stream(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw CSVReader.Malformed(line: 0, column: 0, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw CSVReader.Malformed(line: 0, column: 0, reason: "not a regular file")
        }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CSVReader.Malformed(line: 0, column: 0, reason: String(cString: strerror(errno)))
            }
            if n == 0 { return }
            try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    /// Pass one: every row parsed, rows counted, whether times never go backwards.
    static func check(_ path: String, config: HistorianConfig, textTags: Set<String>) -> Check {
        let pass = Pass(config: config, textTags: textTags)
        var csv = pass.reader()
        var ordered = true
        var lastTime = Int64.min
        func take(_ record: CSVReader.Record) throws {
            guard try pass.take(record) else { return }
            for sample in pass.samples {
                if sample.time.milliseconds < lastTime { ordered = false }
                lastTime = max(lastTime, sample.time.milliseconds)
            }
        }
        do {
            try stream(path) { try csv.push($0, take) }
            try csv.finish(take)
            if pass.rows == nil {
                throw CSVReader.Malformed(line: 1, column: 1, reason: "the file is empty: no header")
            }
            return .valid(rows: pass.count, ordered: ordered)
        } catch let problem as CSVReader.Malformed where problem.line > 0 {
            return .malformed(problem)
        } catch {
            return .unreadable("\(error)")
        }
    }

    /// The file's identity: the SHA-256 of its bytes, as lowercase hex.
    static func hash(_ path: String) throws -> String {
        var hash = SHA256()
        try stream(path) { hash.update($0) }
        return hash.finalize()
    }

    /// Pass two: readings in chunks of about `chunkSamples`, cut where the time changes; a file
    /// whose times go backwards is sorted whole first (stable: rows with one time keep their order).
    static func readChunks(
        _ path: String, config: HistorianConfig, textTags: Set<String>, chunkSamples: Int, ordered: Bool,
        skipping done: Int, _ emit: (Chunk) throws -> Void
    ) throws {
        let pass = Pass(config: config, textTags: textTags)
        var csv = pass.reader()
        var chunk: [Sample] = []
        var all: [Sample] = []
        func take(_ record: CSVReader.Record) throws {
            // Parsed even when skipped: the repeated-hour rule follows the file.
            guard try pass.take(record), pass.count > done else { return }
            let samples = pass.samples
            if !ordered {
                all += samples
                return
            }
            if chunk.count >= chunkSamples, let first = samples.first, first.time != chunk.last?.time {
                try emit(Chunk(samples: chunk, rowsDone: pass.count - 1))
                chunk.removeAll(keepingCapacity: true)
            }
            chunk += samples
        }
        try stream(path) { try csv.push($0, take) }
        try csv.finish(take)
        if !ordered {
            // Unordered files are resumed only as a whole: their readings interleave rows.
            let sorted = all.enumerated().sorted {
                ($0.element.time.milliseconds, $0.offset) < ($1.element.time.milliseconds, $1.offset)
            }.map(\.element)
            try emit(Chunk(samples: sorted, rowsDone: pass.count))
            return
        }
        try emit(Chunk(samples: chunk, rowsDone: pass.count))
    }

    /// One read of a file: the header, then rows to samples. A class, so the CSV reader's
    /// callback holds a reference: capturing the configuration itself made Swift copy it at
    /// every byte (two thirds of the ingest time, measured with perf).
    final class Pass {
        let config: HistorianConfig
        let textTags: Set<String>
        var rows: HistorianRows?
        /// The samples of the last row taken.
        var samples: [Sample] = []
        /// Data rows taken.
        var count = 0

        init(config: HistorianConfig, textTags: Set<String>) {
            self.config = config
            self.textTags = textTags
        }

        /// The CSV reader for this folder's delimiter and encoding.
        func reader() -> CSVReader {
            CSVReader(
                delimiter: config.delimiter.asciiValue ?? UInt8(ascii: ","),
                encoding: config.encoding == .latin1 ? .latin1 : .utf8)
        }

        /// Reads the header, or a row into `samples`; false for the header.
        func take(_ record: CSVReader.Record) throws -> Bool {
            guard let rows else {
                self.rows = try HistorianRows(config: config, header: record, textTags: textTags)
                return false
            }
            samples.removeAll(keepingCapacity: true)
            try rows.read(record, into: &samples)
            count += 1
            return true
        }
    }

    /// Moves `path` into `DIR/sub/` (a name already there gets a numbered suffix); returns
    /// whether the file stays where it is because it could not be moved.
    static func move(_ path: String, to sub: String) -> Bool {
        rename(path, freeName(for: path, in: sub)) != 0
    }

    /// Where `path` goes in `DIR/sub/`: its name, or `NAME.N.EXT` with the first N not taken (by
    /// the file or by its error file).
    static func freeName(for path: String, in sub: String) -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path + "/" + sub
        var target = folder + "/" + url.lastPathComponent
        var n = 1
        let fm = FileManager.default
        while fm.fileExists(atPath: target) || fm.fileExists(atPath: target + ".error.txt") {
            target = folder + "/" + url.deletingPathExtension().lastPathComponent + ".\(n)." + url.pathExtension
            n += 1
        }
        return target
    }

    static func finish(_ path: String, onSuccess: HistorianConfig.OnSuccess) -> Bool {
        switch onSuccess {
        case .archive: return move(path, to: "processed")
        case .delete: return unlink(path) != 0
        }
    }

    /// The file goes whole to `rejected/`, with its error file beside it under the name it gets
    /// there (`NAME.error.txt`, or `NAME.1.csv.error.txt` beside `NAME.1.csv` when an earlier
    /// rejection of that name is there: each keeps its own).
    static func reject(_ path: String, problem: CSVReader.Malformed) -> Bool {
        let name = (path as NSString).lastPathComponent
        let target = freeName(for: path, in: "rejected")
        let text = "\(name): line \(problem.line), column \(problem.column): \(problem.reason)\n"
        try? Data(text.utf8).write(to: URL(fileURLWithPath: target + ".error.txt"))
        return rename(path, target) != 0
    }
}
