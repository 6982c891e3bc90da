import EdgeAgentCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

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
/// (`historian.NAME.file.HASH`: rows done, length, name) as producer state, the last one with the file's record
/// (and without the progress row; a file whose bytes changed before its end keeps its progress
/// and gets no record). Progress belongs to the content, not to the folder: after a
/// crash a file resumes after its own last committed chunk, whatever files were taken in between
/// (an older one first, say); the same content dropped
/// again, under any name, is found by its hash and skipped. A file that grew across a stop (rows
/// appended while the agent was down, mid-file or before its move) is known by its name and its
/// first bytes (those of a file begun or just finished, `grown`): it is taken after the rows
/// already sent, and counted as changed. A file is read through one descriptor
/// from pass one to its move, and only the bytes pass one checked (`OpenFile`), so what an
/// exporter does to it meanwhile never turns an unchecked row into an event. A rejection holds for the
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
    /// Where the readings of a file not in time order are sorted (`SampleSort`).
    var sortDirectory: String {
        writer.options.directory + "/historian-sort/" + config.name.replacingOccurrences(of: "/", with: "_")
    }
    /// The last file this folder finished ("HASH ROWS LENGTH NAME"), committed with its record: a
    /// stop between that commit and the file's move, then rows appended to it, and it is that
    /// file grown.
    var lastKey: String { "historian.\(config.name).last" }
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
        let sorted = sortDirectory
        try await threads.file.run { _ in try? FileManager.default.removeItem(atPath: sorted) }  // a crash's runs
        while !Task.isCancelled {
            let (paths, links) = try await threads.folder.run { ($0.ready(), $0.takeNewLinks()) }
            for link in links {
                logger.warning(
                    "Historian folder holds a symbolic link; it is never read.", metadata: ["file": "\(link)"])
            }
            for path in paths where !Task.isCancelled {
                let stays = try await ingest(path, threads)
                try await threads.folder.run { $0.taken(path, parked: stays) }
            }
        }
    }

    /// The files begun and not finished, as stored with their last committed chunks. Read from
    /// the outbox each time a file is taken: a file left where it is after some of its chunks
    /// (a read that failed) and taken again resumes after them.
    struct Progress: Equatable {
        /// Data rows committed, by content hash.
        var rows: [String: Int] = [:]
        /// The files begun (stored as "ROWS LENGTH NAME") and the last one finished (`lastKey`):
        /// a file under one of their names that starts with their bytes is that file grown.
        var begun: [Begun] = []
        /// The content whose progress is under the folder's key of an earlier release, if any:
        /// that row goes when the file is done.
        var folderKeyHash: String?

        /// A file begun: its content hash, data rows committed, length in bytes and name.
        struct Begun: Equatable {
            var hash: String
            var rows: Int
            var length: Int64
            var name: String
            /// Whether it was finished (`lastKey`) rather than begun.
            var finished = false
        }

        init(_ stored: [String: String], prefix: String, folderKey: String, lastKey: String = "") {
            for (key, value) in stored where key.hasPrefix(prefix) {
                let hash = String(key.dropFirst(prefix.count))
                let parts = value.split(separator: " ", maxSplits: 2)
                guard let done = parts.first.flatMap({ Int($0) }) else { continue }
                rows[hash] = done
                if parts.count == 3, let length = Int64(parts[1]) {
                    begun.append(Begun(hash: hash, rows: done, length: length, name: String(parts[2])))
                }
            }
            let last = stored[lastKey]?.split(separator: " ", maxSplits: 3) ?? []
            if last.count == 4, let done = Int(last[1]), let length = Int64(last[2]) {
                begun.append(
                    Begun(hash: String(last[0]), rows: done, length: length, name: String(last[3]), finished: true))
            }
            let parts = stored[folderKey]?.split(separator: " ") ?? []
            if parts.count == 2, let done = Int(parts[1]) {
                let hash = String(parts[0])
                rows[hash] = max(rows[hash] ?? 0, done)
                folderKeyHash = hash
            }
        }

        /// What a file's progress row says: "ROWS LENGTH NAME".
        static func row(rows: Int, length: Int64, name: String) -> String { "\(rows) \(length) \(name)" }
    }

    /// What pass one found.
    enum Check: Sendable {
        case valid(rows: Int, ordered: Bool)
        case malformed(CSVReader.Malformed)
        case unreadable(String)
        /// The file's bytes changed while they were read.
        case changed(String)
    }

    /// Returns whether the file stays where it is (it could not be moved, or cannot be read).
    private func ingest(_ path: String, _ threads: Threads) async throws -> Bool {
        let name = (path as NSString).lastPathComponent
        let file: OpenFile
        switch try await threads.folder.run({ _ in Result { try OpenFile(path) } }) {
        case let .success(opened): file = opened
        case let .failure(error):
            logger.error(
                "Historian file cannot be read; left where it is, tried again later.",
                metadata: ["file": "\(name)", "error": "\(error)"])
            return true
        }
        defer { file.close() }  // every read of it has ended when `take` returns
        return try await take(file, name: name, threads)
    }

    private func take(_ file: OpenFile, name: String, _ threads: Threads) async throws -> Bool {
        let path = file.path
        let config = self.config, textTags = self.textTags
        let folder = threads.folder, reader = threads.reader
        // Pass one of a large file takes a while: a stop ends it at the next piece read.
        let stop = Stop()
        let (hashed, checked) = try await withTaskCancellationHandler {
            async let hashed = threads.file.run { _ in Result { try Self.digests(file, stop: stop) } }
            let checked = try await folder.run { _ in
                Self.check(file, config: config, textTags: textTags, stop: stop)
            }
            return (try await hashed, checked)
        } onCancel: {
            stop.flag.store(true, ordering: .relaxed)
        }
        try Task.checkCancellation()  // the file is checked again at the next start
        var check = checked
        let digests: Digests
        switch hashed {
        case let .success(value): digests = value
        case let .failure(error as Changed): (digests, check) = (Digests(), .changed(error.reason))
        case let .failure(error): (digests, check) = (Digests(), .unreadable("\(error)"))
        }
        let hash = digests.file
        // The parse and the hash read the file apart: they saw the same bytes only if it did not change.
        if let change = try await folder.run({ _ in file.change() }) { check = .changed(change) }
        switch check {
        case let .unreadable(reason):
            logger.error(
                "Historian file cannot be read; left where it is, tried again later.",
                metadata: ["file": "\(name)", "error": "\(reason)"])
            return true
        case let .changed(change):
            Telemetry.historianFile(source: config.name, result: "changed")
            logger.notice(
                "Historian file changed while it was checked; checked again once it settles.",
                metadata: ["file": "\(name)", "change": "\(change)"])
            return false
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
            var result = "ok"
            if let known = try await record(hash, name: name, reader) {
                guard isLeftOver(name, known, .ok) else {
                    return try await duplicate(path, name: name, of: known, folder: folder)
                }
                logger.notice(
                    "Historian file was ingested before the agent stopped; only its move was left.",
                    metadata: ["file": "\(name)"])
            } else {
                let prefix = progressKey(""), folderKey = folderProgressKey, lastKey = self.lastKey
                let progress = try await reader.run {
                    Progress(try $0.loadState(), prefix: prefix, folderKey: folderKey, lastKey: lastKey)
                }
                var resumeAfter = progress.rows[hash] ?? 0
                var done: [StateRow] = progress.folderKeyHash == hash ? [(folderProgressKey, nil)] : []
                if progress.rows[hash] == nil, ordered,
                    let grown = try await grown(file, name: name, from: progress.begun, threads.file)
                {
                    // Its rows are in the file's order (it is ordered, so was its prefix): the
                    // rows sent are its first ones.
                    resumeAfter = grown.rows
                    if !grown.finished { done.append((progressKey(grown.hash), nil)) }
                    result = "changed"
                    logger.warning(
                        "Historian file grew after it was begun; taken after the rows already sent.",
                        metadata: [
                            "file": "\(name)", "rows": "\(grown.rows)", "of_rows": "\(rows)",
                            "bytes_before": "\(grown.length)", "bytes": "\(file.length)",
                        ])
                } else if resumeAfter > 0 {
                    logger.notice(
                        "Resuming a historian file after its last committed rows.",
                        metadata: ["file": "\(name)", "rows": "\(resumeAfter)"])
                }
                let fed: Fed
                do {
                    fed = try await feed(
                        file, digests: digests, on: threads.file, name: name, ordered: ordered,
                        skipping: resumeAfter, done: done)
                } catch  where !(error is CancellationError) && !Task.isCancelled {
                    logger.error(
                        "Historian file could not be taken; left where it is, tried again later.",
                        metadata: ["file": "\(name)", "error": "\(error)"])
                    return true
                }
                var change = fed.changed
                if change == nil { change = try await folder.run { _ in file.change() } }
                if let change {
                    Telemetry.historianFile(source: config.name, result: "changed")
                    logger.warning(
                        "Historian file changed while it was taken; only the rows checked before were used.",
                        metadata: [
                            "file": "\(name)", "rows": "\(fed.rows)", "of_rows": "\(rows)", "change": "\(change)",
                        ])
                    // Kept (whatever `on_success` says): it holds what was not taken (the content
                    // checked, dropped again, resumes after the rows sent). A file now under its
                    // name is another one, taken on its own.
                    return try await folder.run { _ in file.isAtPath() ? Self.move(path, to: "processed") : false }
                }
                logger.info("Historian file ingested.", metadata: ["file": "\(name)", "rows": "\(rows)"])
            }
            Telemetry.historianFile(source: config.name, result: result)
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

    /// The file begun (or last finished) under this name of which `file` is a longer version:
    /// its bytes start with that file's bytes (the SHA-256 of that many of its bytes is that
    /// file's hash). An exporter appended to it while it was being taken, across a stop.
    private func grown(_ file: OpenFile, name: String, from begun: [Progress.Begun], _ fileThread: Confined<Void>)
        async throws -> Progress.Begun?
    {
        for candidate in begun where candidate.name == name && candidate.length < file.length {
            let prefix = try await fileThread.run { _ in try? Self.digest(file, upTo: candidate.length) }
            if prefix == candidate.hash { return candidate }
        }
        return nil
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

    /// What pass two took: the data rows committed, and why it stopped before the file's end
    /// if its bytes were no longer those pass one checked.
    struct Fed {
        var rows: Int
        var changed: String?
    }

    /// Pass two: the readings in chunks, each committed with the file's progress; the last one
    /// with its record, removing its progress row (and the `done` rows), unless the file changed
    /// before its end: its progress stays.
    private func feed(
        _ file: OpenFile, digests: Digests, on fileThread: Confined<Void>, name: String, ordered: Bool,
        skipping skipped: Int, done: [StateRow]
    ) async throws -> Fed {
        let config = self.config, textTags = self.textTags, chunkSamples = self.chunkSamples
        let hash = digests.file, key = progressKey(hash), fingerprint = self.fingerprint
        let sortDirectory = self.sortDirectory
        let (chunks, sink) = AsyncThrowingStream.makeStream(of: Chunk.self, bufferingPolicy: .bufferingOldest(2))
        let stop = Stop()
        // The file is read on its own thread; chunks cross over one at a time (memory stays bounded).
        let producer = Task {
            do {
                try await fileThread.run { _ in
                    try Self.readChunks(
                        file, digests: digests, config: config, textTags: textTags, chunkSamples: chunkSamples,
                        ordered: ordered, skipping: skipped, sortDirectory: sortDirectory, stop: stop
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
        let length = file.length, lastKey = self.lastKey
        func consume() async throws -> Fed {
            for try await chunk in chunks {  // `commit` resends a refused chunk itself
                // A file whose bytes changed keeps its progress and gets no record: the rows not
                // sent are taken when the same content is dropped again.
                let whole = chunk.last && chunk.changed == nil
                let row = Progress.row(rows: chunk.rowsDone, length: length, name: name)
                let state: [StateRow] =
                    whole ? [(key, nil), (lastKey, "\(hash) " + row)] + done : [(key, row)] + (chunk.last ? done : [])
                try await commit(
                    Signal(
                        samples: chunk.samples, state: state,
                        file: whole
                            ? FileRecord(
                                hash: hash, source: config.name, name: name, rows: chunk.rowsDone, outcome: .ok,
                                config: fingerprint)
                            : nil
                    ))
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

    /// Set when pass two's reader is to stop (a stop of the agent, a failed commit): a file being
    /// sorted sends nothing for a long while, so the reader looks at it between pieces.
    final class Stop: Sendable {
        let flag = Atomic<Bool>(false)
    }

    struct Chunk: Sendable {
        var samples: [Sample]
        /// Where the file resumes once this chunk is committed: its data rows consumed (a file
        /// sorted here: its readings in time order); the last chunk: the file's data rows.
        var rowsDone: Int
        /// The file's last chunk: it is committed with the file's record.
        var last = false
        /// Why the rows end before the file's end: its bytes were no longer those checked.
        var changed: String?
    }

    // MARK: - Blocking file work (on the folder's and the file's threads)

    /// A file being taken, read through one descriptor from pass one to its move, and only its
    /// first `length` bytes (its size when opened).
    ///
    /// Why this is enough for "no row that was not checked becomes an event": a file renamed over
    /// it or its deletion does not change what the descriptor reads; rows appended are past
    /// `length`. What is left is a change of the bytes in place (a truncation, a rewrite). Pass
    /// one parses (folder thread) and hashes (file thread) the bytes apart; it is trusted only if
    /// the file's size, modification and change times are what they were when it was opened
    /// (`change()`), so the parse and the hash saw the same bytes. The hash keeps the SHA-256 of
    /// every prefix ending at a `blockSize` boundary (`Digests`): pass two reads a whole block,
    /// checks its prefix digest, and only then parses it, so each row it sends was in the bytes
    /// pass one checked. A block that differs or ends short ends the file there: the rows before
    /// it are committed with the file's progress and no record (the same content dropped again
    /// resumes after them) and the operator is told. Checked per block rather than once at the end because chunks are
    /// committed as the file is read. Two more SHA-256 passes per file's byte, no more memory
    /// than a block.
    struct OpenFile: Sendable {
        let path: String
        let fd: Int32
        /// The file when it was opened.
        let opened: Identity
        /// The bytes taken: the file's size when opened.
        var length: Int64 { opened.size }

        /// What `fstat` says of a file, enough to tell that it changed.
        struct Identity: Equatable, Sendable {
            var device: UInt64
            var inode: UInt64
            var size: Int64
            var modified: Int64
            var changed: Int64

            init(_ info: stat) {
                device = UInt64(info.st_dev)
                inode = UInt64(info.st_ino)
                size = Int64(info.st_size)
                modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
            }
        }

        /// Opens `path`: a symbolic link (put there after the folder was scanned) or anything but
        /// a regular file is not opened.
        init(_ path: String) throws {
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            guard fd >= 0 else {
                throw CSVReader.Malformed(line: 0, column: 0, reason: String(cString: strerror(errno)))
            }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                Glibc.close(fd)
                throw CSVReader.Malformed(line: 0, column: 0, reason: "not a regular file")
            }
            self.path = path
            self.fd = fd
            opened = Identity(info)
        }

        func close() { Glibc.close(fd) }

        /// Whether `path` still names this file (not deleted, not replaced).
        func isAtPath() -> Bool {
            var info = stat()
            guard lstat(path, &info) == 0 else { return false }
            return UInt64(info.st_dev) == opened.device && UInt64(info.st_ino) == opened.inode
        }

        /// How the file differs from when it was opened, if it does.
        func change() -> String? {
            var info = stat()
            guard fstat(fd, &info) == 0 else { return "it cannot be examined" }
            let now = Identity(info)
            if !isAtPath() { return lstat(path, &info) == 0 ? "it was replaced" : "it was deleted" }
            if now.size > opened.size { return "rows were appended" }
            if now.size < opened.size { return "it was truncated" }
            return now == opened ? nil : "it was rewritten"
        }

        /// Reads the first `length` bytes (or fewer: `end`) in pieces of at most 64 KiB that never
        /// cross a `blockSize` boundary, handing each to `body` with the offset it ends at.
        func read(upTo end: Int64? = nil, _ body: (UnsafeBufferPointer<UInt8>, Int64) throws -> Void) throws {
            let length = min(end ?? self.length, self.length)
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var offset: Int64 = 0
            while offset < length {
                let wanted = Int(min(Int64(buffer.count), length - offset, blockSize - offset % blockSize))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(offset)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CSVReader.Malformed(line: 0, column: 0, reason: String(cString: strerror(errno)))
                }
                if n == 0 { throw Changed(reason: "it was truncated") }
                offset += Int64(n)
                try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<n]), offset) }
            }
        }
    }

    /// The bytes pass one checked are checked again by pass two in blocks of this size.
    static let blockSize: Int64 = 1 << 20

    /// A file's bytes are no longer those read before.
    struct Changed: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// The SHA-256 of a file's checked bytes (its identity, lowercase hex) and of each prefix
    /// ending at a block boundary (and at its end).
    struct Digests: Sendable {
        var file = ""
        var blocks: [String] = []
    }

    /// Pass one: every row parsed, rows counted, whether times never go backwards. A `stop` ends
    /// it (as unreadable: the caller knows it stopped).
    static func check(_ file: OpenFile, config: HistorianConfig, textTags: Set<String>, stop: Stop = Stop()) -> Check {
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
            try file.read { piece, _ in
                if stop.flag.load(ordering: .relaxed) { throw CancellationError() }
                try csv.push(piece, take)
            }
            try csv.finish(take)
            if pass.rows == nil {
                throw CSVReader.Malformed(line: 1, column: 1, reason: "the file is empty: no header")
            }
            return .valid(rows: pass.count, ordered: ordered)
        } catch let problem as CSVReader.Malformed where problem.line > 0 {
            return .malformed(problem)
        } catch let change as Changed {
            return .changed(change.reason)
        } catch {
            return .unreadable("\(error)")
        }
    }

    /// Pass one's hashes of the file's bytes; a `stop` ends it (`CancellationError`).
    static func digests(_ file: OpenFile, stop: Stop = Stop()) throws -> Digests {
        var hash = SHA256()
        var digests = Digests()
        try file.read { piece, end in
            if stop.flag.load(ordering: .relaxed) { throw CancellationError() }
            hash.update(piece)
            if end % blockSize == 0 || end == file.length {
                var prefix = hash
                digests.blocks.append(prefix.finalize())
            }
        }
        digests.file = hash.finalize()
        return digests
    }

    /// The SHA-256 of the file's first `length` bytes.
    static func digest(_ file: OpenFile, upTo length: Int64) throws -> String {
        var hash = SHA256()
        try file.read(upTo: length) { piece, _ in hash.update(piece) }
        return hash.finalize()
    }

    /// Pass two: readings in chunks of about `chunkSamples`, cut where the time changes. A file
    /// whose times go backwards is put in time order first (`SampleSort`, in `sortDirectory`;
    /// stable: readings of one time keep the file's order); its chunks' `rowsDone` count readings
    /// in that order, where it resumes. Each block is parsed only once its bytes are found to be
    /// those pass one hashed; the rows end at the first that is not (the last chunk says why).
    static func readChunks(
        _ file: OpenFile, digests: Digests, config: HistorianConfig, textTags: Set<String>, chunkSamples: Int,
        ordered: Bool, skipping done: Int, sortDirectory: String, stop: Stop = Stop(),
        _ emit: (Chunk) throws -> Void
    ) throws {
        let pass = Pass(config: config, textTags: textTags)
        var csv = pass.reader()
        var chunk: [Sample] = []
        let sort = ordered ? nil : try SampleSort(directory: sortDirectory)
        func take(_ record: CSVReader.Record) throws {
            // Parsed even when skipped: the repeated-hour rule follows the file.
            guard try pass.take(record) else { return }
            if let sort { return try sort.add(pass.samples) }
            guard pass.count > done else { return }
            let samples = pass.samples
            if chunk.count >= chunkSamples, let first = samples.first, first.time != chunk.last?.time {
                try emit(Chunk(samples: chunk, rowsDone: pass.count - 1))
                chunk.removeAll(keepingCapacity: true)
            }
            chunk += samples
        }
        var changed: String?
        do {
            var hash = SHA256()
            var block: [UInt8] = []
            block.reserveCapacity(Int(blockSize))
            var index = 0
            try file.read { piece, end in
                if stop.flag.load(ordering: .relaxed) { throw CancellationError() }
                block.append(contentsOf: piece)
                guard end % blockSize == 0 || end == file.length else { return }
                hash.update(block)
                var prefix = hash
                guard index < digests.blocks.count, prefix.finalize() == digests.blocks[index] else {
                    throw Changed(reason: "it was rewritten")
                }
                index += 1
                try block.withUnsafeBufferPointer { try csv.push($0, take) }
                block.removeAll(keepingCapacity: true)
            }
            try csv.finish(take)
        } catch let change as Changed {
            changed = change.reason
        }
        if let sort {
            // Nothing of a file sorted here is sent before all of it is read.
            guard changed == nil else {
                return try emit(Chunk(samples: [], rowsDone: done, last: true, changed: changed))
            }
            var position = 0
            try sort.merge { sample in
                position += 1
                guard position > done else {
                    // Skipping a resumed file's readings sends nothing for a while: a stop ends it.
                    if position % 65_536 == 0, stop.flag.load(ordering: .relaxed) { throw CancellationError() }
                    return
                }
                if chunk.count >= chunkSamples, sample.time != chunk.last?.time {
                    try emit(Chunk(samples: chunk, rowsDone: position - 1))
                    chunk.removeAll(keepingCapacity: true)
                }
                chunk.append(sample)
            }
            return try emit(Chunk(samples: chunk, rowsDone: pass.count, last: true))
        }
        try emit(Chunk(samples: chunk, rowsDone: max(pass.count, done), last: true, changed: changed))
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
