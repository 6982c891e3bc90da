import EdgeAgentCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Blocking file work (on the folder's and the file's threads)

extension HistorianIngestor {
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
    static func check(
        _ file: OpenFile, config: HistorianConfig, textTags: Set<String>, stop: Stop = Stop()
    ) -> Machine.Check {
        let checker = Checker(Pass(config: config, textTags: textTags), fileStart: true)
        do {
            try checker.read(file, upTo: nil, stop: stop)
            try checker.finish()
            if checker.pass.rows == nil {
                throw CSVReader.Malformed(line: 1, column: 1, reason: "the file is empty: no header")
            }
            return .valid(rows: checker.pass.count, ordered: checker.found.ordered)
        } catch {
            return ended(error)
        }
    }

    /// What an error that ended pass one makes of the file.
    static func ended(_ error: any Error) -> Machine.Check {
        switch error {
        case let problem as CSVReader.Malformed where problem.line > 0: .malformed(problem)
        case let change as Changed: .changed(change.reason)
        default: .unreadable("\(error)")
        }
    }

    /// Parses a file's bytes, or a part of them, keeping what pass one needs of its rows. Its
    /// state is touched only by the thread reading, as `Pass`'s.
    final class Checker {
        let pass: Pass
        @exclusivity(unchecked) var csv: CSVReader
        @exclusivity(unchecked) var found = Found()

        init(_ pass: Pass, fileStart: Bool) {
            self.pass = pass
            csv = pass.reader(fileStart: fileStart)
        }

        func push(_ bytes: UnsafeBufferPointer<UInt8>) throws { try csv.push(bytes, take) }
        func finish() throws { try csv.finish(take) }

        /// Parses `file` from its start up to `end` (its end: nil); a `stop` ends it.
        func read(_ file: OpenFile, upTo end: Int64?, stop: Stop) throws {
            try file.read(upTo: end) { piece, _ in
                if stop.flag.load(ordering: .relaxed) { throw CancellationError() }
                try push(piece)
            }
        }

        private func take(_ record: CSVReader.Record) throws {
            guard try pass.take(record) else { return }
            for sample in pass.samples {
                let time = sample.time.milliseconds
                if found.first == nil { found.first = time }
                if time < found.last { found.ordered = false }
                found.last = max(found.last, time)
            }
        }

        /// What the bytes pushed so far hold, short of the file's end.
        var part: Part {
            var part = found
            part.rows = pass.count
            part.line = csv.line
            part.atRecordStart = csv.isAtRecordStart && pass.rows != nil
            return .read(part)
        }
    }

    /// What parsing a part of a file found.
    struct Found: Sendable, Equatable {
        var rows = 0
        var ordered = true
        /// The first and the latest time of its samples.
        var first: Int64?
        var last = Int64.min
        /// The line its reader reached, and whether it ended at a record's start.
        var line = 1
        var atRecordStart = false
    }

    /// A part of a file parsed: what it found, or what ended the file's check.
    enum Part: Sendable, Equatable {
        case read(Found)
        case ended(Machine.Check)
    }

    /// Where pass one splits `file` in two parts parsed at once (`checkWhole`): just past the
    /// first line break from three fifths of it (the thread parsing the tail also hashes the
    /// whole file). Nil, checked whole, for a small file, or one whose times are read depending
    /// on the rows before them (the repeated-hour rule).
    static func splitPoint(_ file: OpenFile, config: HistorianConfig) -> Int64? {
        let time = HistorianTime(
            format: HistorianTime.Format(config.timestampFormat) ?? .iso8601, timezone: config.timezone)
        guard file.length >= minimumSplitLength, time.readsEachAlone else { return nil }
        let target = file.length / 5 * 3
        var window = [UInt8](repeating: 0, count: 64 * 1024)
        let n = window.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, $0.count, off_t(target)) }
        guard n > 0, let i = window[..<n].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let split = target + Int64(i) + 1
        return split < file.length ? split : nil
    }

    /// Files shorter than this are checked whole, on one thread.
    static let minimumSplitLength: Int64 = 4 << 20

    /// The head of a file split for pass one: its bytes before `split`.
    static func checkHead(
        _ file: OpenFile, upTo split: Int64, config: HistorianConfig, textTags: Set<String>, stop: Stop = Stop()
    ) -> Part {
        let checker = Checker(Pass(config: config, textTags: textTags), fileStart: true)
        do {
            try checker.read(file, upTo: split, stop: stop)
            return checker.part
        } catch {
            return .ended(ended(error))
        }
    }

    /// The tail of a file split for pass one, parsed from `split` while the file's thread hashes
    /// the whole file (`digests`): the header is read with a reader of its own from the file's
    /// start, the rows with one that starts at `split`. Nil (the head's reader decides) when
    /// the header does not end before `split`, or a record grows past a MiB (the split may be
    /// inside a quoted field: nothing then bounds what it reads as one record).
    final class TailCheck {
        let split: Int64
        private let config: HistorianConfig
        private let textTags: Set<String>
        private var header: CSVReader
        private var checker: Checker?
        private var outcome: Part?
        private var gaveUp = false

        init(split: Int64, config: HistorianConfig, textTags: Set<String>) {
            self.split = split
            self.config = config
            self.textTags = textTags
            header = Pass(config: config, textTags: textTags).reader(fileStart: true)
        }

        /// Takes the file's next `piece`, which ends at offset `end`.
        func take(_ piece: UnsafeBufferPointer<UInt8>, end: Int64) {
            guard !gaveUp, outcome == nil else { return }
            let start = end - Int64(piece.count)
            do {
                if checker == nil {
                    var first: CSVReader.Record?
                    let before = UnsafeBufferPointer(rebasing: piece[0..<Int(min(end, split) - start)])
                    try header.push(before) { record in if first == nil { first = record } }
                    if let first {
                        let pass = Pass(config: config, textTags: textTags)
                        _ = try pass.take(first)
                        checker = Checker(pass, fileStart: false)
                    } else if end >= split {
                        gaveUp = true
                    }
                }
                guard let checker, end > split else { return }
                try checker.push(UnsafeBufferPointer(rebasing: piece[Int(max(start, split) - start)...]))
                if checker.csv.pendingBytes > 1 << 20 { gaveUp = true }
            } catch let problem as CSVReader.Malformed where checker != nil && problem.line > 0 {
                outcome = .ended(.malformed(problem))
            } catch {
                gaveUp = true
            }
        }

        /// What the tail holds, its lines counted from `split`; nil if it cannot tell.
        func finish() -> Part? {
            guard !gaveUp, let checker else { return nil }
            if let outcome { return outcome }
            do {
                try checker.finish()
                return checker.part
            } catch let problem as CSVReader.Malformed where problem.line > 0 {
                return .ended(.malformed(problem))
            } catch {
                return nil
            }
        }
    }

    /// The file's check from its `head` and `tail`: what checking it whole finds; nil when the
    /// tail was not read from a record's start (or could not tell): then it is checked whole.
    static func joined(head: Part, tail: Part?) -> Machine.Check? {
        let found: Found
        switch head {
        case let .ended(check): return check  // the head is the file's start: what a whole check finds first
        case let .read(read): found = read
        }
        guard found.atRecordStart, let tail else { return nil }
        switch tail {
        case let .ended(.malformed(problem)):
            return .malformed(
                CSVReader.Malformed(line: found.line + problem.line - 1, column: problem.column, reason: problem.reason)
            )
        case let .ended(check):
            return check
        case let .read(rest):
            let ordered = found.ordered && rest.ordered && (rest.first.map { $0 >= found.last } ?? true)
            return .valid(rows: found.rows + rest.rows, ordered: ordered)
        }
    }

    /// Pass one's hashes of the file's bytes, each piece also handed to `tail` if there is one;
    /// a `stop` ends it (`CancellationError`).
    static func digests(_ file: OpenFile, stop: Stop = Stop(), tail: TailCheck? = nil) throws -> Digests {
        let hash = FileSHA256()
        var digests = Digests()
        try file.read { piece, end in
            if stop.flag.load(ordering: .relaxed) { throw CancellationError() }
            hash.update(piece)
            if end % blockSize == 0 || end == file.length { digests.blocks.append(hash.digest()) }
            tail?.take(piece, end: end)
        }
        digests.file = hash.digest()
        return digests
    }

    /// The SHA-256 of the file's first `length` bytes.
    static func digest(_ file: OpenFile, upTo length: Int64) throws -> String {
        let hash = FileSHA256()
        try file.read(upTo: length) { piece, _ in hash.update(piece) }
        return hash.digest()
    }

    /// Pass two: readings in chunks of about `chunkSamples` samples or rows, whichever comes first
    /// (rows too: where the rules read few of a file's tags, a chunk still covers as many rows),
    /// cut where the time changes. A file whose times go backwards is put in time order first
    /// (`SampleSort`, in `sortDirectory`; stable: readings of one time keep the file's order); its
    /// chunks' `rowsDone` count readings in that order, where it resumes. Each block is parsed
    /// only once its bytes are found to be those pass one hashed; the rows end at the first that
    /// is not (the last chunk says why). Samples are made of the tags in `reads` (nil: every
    /// mapped tag; another tag gives one only at a time without them: `HistorianRows`), except in
    /// a file sorted first: its resume point counts every mapped tag's readings.
    static func readChunks(
        _ file: OpenFile, digests: Digests, config: HistorianConfig, textTags: Set<String>, reads: Set<String>?,
        chunkSamples: Int, ordered: Bool, skipping done: Int, sortDirectory: String, stop: Stop = Stop(),
        _ emit: (Chunk) throws -> Void
    ) throws {
        let pass = Pass(config: config, textTags: textTags, reads: ordered ? reads : nil)
        var csv = pass.reader()
        var chunk: [Sample] = []
        var rowsBefore = done  // the rows before `chunk`
        let sort = ordered ? nil : try SampleSort(directory: sortDirectory)
        func take(_ record: CSVReader.Record) throws {
            // Parsed even when skipped: the repeated-hour rule follows the file.
            guard try pass.take(record) else { return }
            if let sort { return try sort.add(pass.samples) }
            guard pass.count > done else { return }
            let samples = pass.samples
            let full = chunk.count >= chunkSamples || (!chunk.isEmpty && pass.count - 1 - rowsBefore >= chunkSamples)
            if full, let first = samples.first, first.time != chunk.last?.time {
                rowsBefore = pass.count - 1
                try emit(Chunk(samples: chunk, rowsDone: rowsBefore))
                chunk.removeAll(keepingCapacity: true)
            }
            chunk += samples
        }
        var changed: String?
        do {
            let hash = FileSHA256()
            var block: [UInt8] = []
            block.reserveCapacity(Int(blockSize))
            var index = 0
            try file.read { piece, end in
                if stop.flag.load(ordering: .relaxed) { throw CancellationError() }
                block.append(contentsOf: piece)
                guard end % blockSize == 0 || end == file.length else { return }
                block.withUnsafeBufferPointer { hash.update($0) }
                guard index < digests.blocks.count, hash.digest() == digests.blocks[index] else {
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
    /// every byte (two thirds of the ingest time, measured with perf). Its state is touched
    /// several times per row, only by the thread reading the file and never while another access
    /// is open: it is not checked for exclusive access at run time (the checks were a sixth of
    /// reading a row).
    final class Pass {
        let config: HistorianConfig
        let textTags: Set<String>
        /// Pass two's: the tags whose samples are made (`HistorianRows`); nil, every mapped tag.
        let reads: Set<String>?
        @exclusivity(unchecked) var rows: HistorianRows?
        /// The samples of the last row taken.
        @exclusivity(unchecked) var samples: [Sample] = []
        /// Data rows taken.
        @exclusivity(unchecked) var count = 0

        init(config: HistorianConfig, textTags: Set<String>, reads: Set<String>? = nil) {
            self.config = config
            self.textTags = textTags
            self.reads = reads
        }

        /// The CSV reader for this folder's delimiter and encoding (`fileStart`: `CSVReader`'s).
        func reader(fileStart: Bool = true) -> CSVReader {
            CSVReader(
                delimiter: config.delimiter.asciiValue ?? UInt8(ascii: ","),
                encoding: config.encoding == .latin1 ? .latin1 : .utf8, fileStart: fileStart)
        }

        /// Reads the header, or a row into `samples`; false for the header.
        func take(_ record: CSVReader.Record) throws -> Bool {
            guard let rows else {
                self.rows = try HistorianRows(config: config, header: record, textTags: textTags, reads: reads)
                return false
            }
            samples.removeAll(keepingCapacity: true)
            try rows.read(record, into: &samples)
            count += 1
            return true
        }
    }

    /// Does a move the machine asked for (a name already in the folder gets a numbered suffix:
    /// `HistorianFileStateMachine.freeName`); returns whether it was done.
    static func move(_ path: String, to destination: Machine.Destination, _ file: OpenFile) -> Bool {
        let url = URL(fileURLWithPath: path)
        func into(_ sub: String) -> String {
            let folder = url.deletingLastPathComponent().path + "/" + sub + "/"
            return folder
                + Machine.freeName(for: url.lastPathComponent) { FileManager.default.fileExists(atPath: folder + $0) }
        }
        switch destination {
        case .processed: return rename(path, into("processed")) == 0
        case .deleted: return unlink(path) == 0
        case let .rejected(errorText):
            let target = into("rejected")
            if let errorText { try? Data(errorText.utf8).write(to: URL(fileURLWithPath: target + ".error.txt")) }
            return rename(path, target) == 0
        case .processedUnlessReplaced:
            return !file.isAtPath() || rename(path, into("processed")) == 0
        }
    }
}
