/// The life of a historian folder's files, from a listing of the folder to each file's move
/// (SPEC 3 `historian`, SPEC 7): which file is taken when, from which row, what is committed
/// with its chunks, and where it goes. It does no I/O: `HistorianIngestor` lists, reads, commits
/// and moves as the actions say, and answers with what it found. Time is passed in, as the time
/// since the driver started on its clock.
///
/// | event | actions |
/// |---|---|
/// | `listed(entries)` | a warning for each new symbolic link (never read); `check` each file unchanged in size and modification for `settle`, oldest modification first |
/// | `unreadable(reason)` | an error; the file waits for its retry (below) or a change |
/// | `checked(.changed)` | counted `changed`; the file settles again |
/// | `checked(.malformed)` | its rejection recorded; moved to `rejected/` with its error file |
/// | `checked(.valid)` | `loadProgress` |
/// | `checked` of a content recorded | a duplicate: moved as the first was; left by a stop before its move: moved as its record says; rejected under another configuration: checked as new |
/// | `progressLoaded(state)` | `digestPrefixes` of the files begun under its name and shorter, or `feed` |
/// | `prefixesDigested` | `feed` after the rows of the file it grew from (counted `changed`), or of its own progress |
/// | `fed(rows, changed)` | counted; moved as `on_success` says, or to `processed/` if it changed |
/// | `feedFailed(reason)` | an error; the file waits for its retry |
/// | `moved(ok: false)` | an error; the file waits for its retry |
/// | `stopped` | the file in hand stays where it is, checked again at the next start; nothing more is taken |
///
/// A file left where it is waits for its retry, later after each failure, then settles again;
/// a change ends the wait:
///
/// | failures | retry after |
/// |---|---|
/// | 1 | 5 s |
/// | 2 | 10 s |
/// | 3 | 20 s |
/// | 7+ | 5 min |
///
/// Exactly once per file: each chunk is committed with the file's progress
/// (`historian.NAME.file.HASH`: "ROWS LENGTH NAME"), the last with the file's record and without
/// it. Progress belongs to the content: after a crash a file resumes after its own rows, whatever
/// was taken in between, and the same content under any name is found by its hash. A file whose
/// bytes start with those of a file begun (or the last finished, `historian.NAME.last`) under its
/// name is that file grown: taken after the rows already sent. A rejection holds for the
/// configuration it was made under (`fingerprint`).
public struct HistorianFileStateMachine: Sendable {
    public let config: HistorianConfig
    /// What decides how this folder's files read (`fingerprint(_:textTags:)`).
    public let fingerprint: String

    /// A name in the folder: a regular file (size, modification time in ns) or a symbolic link.
    public struct Entry: Equatable, Sendable {
        public var name: String
        public var size: Int64
        public var modified: Int64
        public var isLink: Bool

        public init(name: String, size: Int64 = 0, modified: Int64 = 0, isLink: Bool = false) {
            self.name = name
            self.size = size
            self.modified = modified
            self.isLink = isLink
        }
    }

    /// What pass one found.
    public enum Check: Equatable, Sendable {
        case valid(rows: Int, ordered: Bool)
        case malformed(CSVReader.Malformed)
        case unreadable(String)
        /// The file's bytes changed while they were read.
        case changed(String)
    }

    public enum Outcome: String, Sendable { case ok, rejected }

    /// The outbox's record of a content, and whether a file of the name taken is in the folders
    /// a file goes to.
    public struct Known: Equatable, Sendable {
        public var source: String
        public var name: String
        public var outcome: Outcome
        /// The fingerprint it was checked under.
        public var config: String
        public var inProcessed: Bool
        public var inRejected: Bool

        public init(
            source: String, name: String, outcome: Outcome, config: String, inProcessed: Bool = false,
            inRejected: Bool = false
        ) {
            self.source = source
            self.name = name
            self.outcome = outcome
            self.config = config
            self.inProcessed = inProcessed
            self.inRejected = inRejected
        }
    }

    /// A file's record, committed with its last chunk (or alone: a rejection).
    public struct Record: Equatable, Sendable {
        public var hash: String
        public var name: String
        public var rows: Int
        public var outcome: Outcome
        public var config: String

        public init(hash: String, name: String, rows: Int, outcome: Outcome, config: String) {
            self.hash = hash
            self.name = name
            self.rows = rows
            self.outcome = outcome
            self.config = config
        }
    }

    /// A row of producer state: nil removes it.
    public struct Row: Equatable, Sendable {
        public var key: String
        public var value: String?

        public init(_ key: String, _ value: String?) {
            self.key = key
            self.value = value
        }
    }

    /// What is committed with a chunk (or alone).
    public struct Commit: Equatable, Sendable {
        public var state: [Row] = []
        public var record: Record?

        public init(state: [Row] = [], record: Record? = nil) {
            self.state = state
            self.record = record
        }
    }

    public enum Destination: Equatable, Sendable {
        case processed
        /// With the error file's text beside it, if any.
        case rejected(errorText: String?)
        case deleted
        /// To `processed/`, unless its name now names another file: that one is taken on its own.
        case processedUnlessReplaced
    }

    public struct Log: Equatable, Sendable {
        public enum Level: Sendable { case info, notice, warning, error }
        public var level: Level
        public var message: String
        public var metadata: [String: String]
    }

    public enum Action: Equatable, Sendable {
        /// Open the file and check it whole (pass one): answer `checked` or `unreadable`.
        case check(String)
        /// Read the outbox's state rows: answer `progressLoaded`.
        case loadProgress
        /// The SHA-256 of the file's first bytes, for each length: answer `prefixesDigested`.
        case digestPrefixes([Int64])
        /// Pass two, after the first `from` data rows (of its readings in time order, sorted first
        /// unless `ordered`): each chunk committed with `commit(rowsDone:last:changed:)`, then
        /// answer `fed` or `feedFailed`.
        case feed(from: Int, ordered: Bool)
        case commit(Commit)
        /// Answer `moved`.
        case move(String, to: Destination)
        /// `edge_historian_files_total{result}`.
        case count(String)
        case log(Log)
    }

    /// The file being taken.
    struct Taking {
        var name: String
        var hash = ""
        var length: Int64 = 0
        var rows = 0
        var ordered = true
        var result = "ok"
        var resumeAfter = 0
        /// State rows removed with its last chunk (a grown file's progress, an earlier release's row).
        var done: [Row] = []
        var candidates: [Progress.Begun] = []
        /// A progress row of this very content was found: it says where to resume.
        var hasOwnProgress = false
    }

    private var seen: [String: (size: Int64, modified: Int64, since: Duration)] = [:]
    /// Files left where they are (unreadable, not moved): taken again once they change, or at `retry`.
    private var parked: [String: (size: Int64, modified: Int64, retry: Duration, failures: Int)] = [:]
    private var links = Set<String>()
    private var taking: Taking?
    private var stopping = false

    public init(config: HistorianConfig, textTags: Set<String>) {
        self.config = config
        fingerprint = Self.fingerprint(config, textTags: textTags)
    }

    /// A digest of everything that decides whether a file reads and what its rows become: the
    /// layout, delimiter, decimal mark, encoding, columns, time format and zone, good qualities,
    /// the tag map and which mapped tags are text. Not the folder, pattern, settle time or what
    /// happens to a file once taken. Stable across runs (sorted, no `hashValue`).
    public static func fingerprint(_ config: HistorianConfig, textTags: Set<String>) -> String {
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

    /// The progress of the file with content `hash`: "ROWS LENGTH NAME".
    public func progressKey(_ hash: String) -> String { "historian.\(config.name).file.\(hash)" }
    /// The last file this folder finished ("HASH ROWS LENGTH NAME"), committed with its record.
    public var lastKey: String { "historian.\(config.name).last" }
    /// Where an earlier release kept the progress of one file per folder ("HASH ROWS").
    public var folderKey: String { "historian.\(config.name)" }

    /// The wait before retry number `failures` of a file left where it is.
    public static func retryDelay(failures: Int) -> Duration {
        .seconds(min(5 << min(max(failures, 1) - 1, 6), 300))
    }

    /// Where a file named `name` goes in a folder: its name, or `NAME.N.EXT` with the first N
    /// not taken there (by a file or by its error file).
    public static func freeName(for name: String, isTaken: (String) -> Bool) -> String {
        let dot = name.lastIndex(of: ".").flatMap { $0 == name.startIndex ? nil : $0 }
        let stem = dot.map { String(name[..<$0]) } ?? name
        let ext = dot.map { String(name[$0...]) } ?? ""
        var target = name
        var n = 1
        while isTaken(target) || isTaken(target + ".error.txt") {
            target = "\(stem).\(n)\(ext)"
            n += 1
        }
        return target
    }

    // MARK: - Events

    /// A listing of the folder (each is a settle tick): the files to check, oldest first.
    public mutating func listed(_ entries: [Entry], now: Duration) -> [Action] {
        var actions: [Action] = []
        var present = Set<String>()
        var ready: [Entry] = []
        for entry in entries {
            present.insert(entry.name)
            if entry.isLink {
                if links.insert(entry.name).inserted {
                    actions.append(
                        log(.warning, "Historian folder holds a symbolic link; it is never read.", ["file": entry.name])
                    )
                }
                continue
            }
            if let held = parked[entry.name], held.size == entry.size, held.modified == entry.modified {
                if now < held.retry { continue }
            } else {
                parked[entry.name] = nil
            }
            if let known = seen[entry.name], known.size == entry.size, known.modified == entry.modified {
                if now - known.since >= config.settle { ready.append(entry) }
            } else {
                seen[entry.name] = (entry.size, entry.modified, now)
                if config.settle == .zero { ready.append(entry) }
            }
        }
        seen = seen.filter { present.contains($0.key) }
        parked = parked.filter { present.contains($0.key) }
        links = links.filter { present.contains($0) }
        guard !stopping else { return actions }
        ready.sort { ($0.modified, $0.name) < ($1.modified, $1.name) }
        return actions + ready.map { .check($0.name) }
    }

    /// The file could not be opened or read through: it stays where it is.
    public mutating func unreadable(_ name: String, reason: String, now: Duration) -> [Action] {
        park(name, now: now, "Historian file cannot be read; left where it is, tried again later.", ["error": reason])
    }

    /// Pass one's result for file `name` of `length` bytes with content `hash`, and the record of
    /// that content if there is one.
    public mutating func checked(
        _ name: String, _ check: Check, hash: String, length: Int64, known: Known?, now: Duration
    ) -> [Action] {
        var file = Taking(name: name, hash: hash, length: length)
        var known = known
        switch check {
        case let .unreadable(reason):
            return unreadable(name, reason: reason, now: now)
        case let .changed(change):
            release(name)
            return [
                .count("changed"),
                log(
                    .notice, "Historian file changed while it was checked; checked again once it settles.",
                    ["file": name, "change": change]),
            ]
        case .malformed, .valid:
            break
        }
        var actions: [Action] = []
        if let record = known, record.outcome == .rejected, record.config != fingerprint {
            actions.append(
                log(
                    .notice, "Historian file was rejected under another configuration; checked again.",
                    ["file": name, "same_as": record.name]))
            known = nil
        }
        switch check {
        case let .malformed(problem):
            if let known {
                guard isLeftOver(name, known, .rejected) else { return actions + duplicate(name, of: known) }
            } else {
                let record = Record(hash: hash, name: name, rows: 0, outcome: .rejected, config: fingerprint)
                actions.append(.commit(Commit(record: record)))
            }
            taking = file
            return actions + [
                .count("rejected"),
                log(
                    .error, "Historian file rejected; no row of it was used.",
                    [
                        "file": name, "line": "\(problem.line)", "column": "\(problem.column)",
                        "reason": problem.reason,
                    ]),
                .move(
                    name,
                    to: .rejected(
                        errorText: "\(name): line \(problem.line), column \(problem.column): \(problem.reason)\n")),
            ]
        case let .valid(rows, ordered):
            if let known {
                guard isLeftOver(name, known, .ok) else { return actions + duplicate(name, of: known) }
                taking = file
                return actions + [
                    log(
                        .notice, "Historian file was ingested before the agent stopped; only its move was left.",
                        ["file": name]),
                    .count("ok"), .move(name, to: finished),
                ]
            }
            file.rows = rows
            file.ordered = ordered
            taking = file
            return actions + [.loadProgress]
        default:
            return actions
        }
    }

    /// The outbox's state rows (`loadProgress`).
    public mutating func progressLoaded(_ stored: [String: String]) -> [Action] {
        guard var file = taking else { return [] }
        let progress = Progress(stored, prefix: progressKey(""), folderKey: folderKey, lastKey: lastKey)
        file.resumeAfter = progress.rows[file.hash] ?? 0
        file.hasOwnProgress = progress.rows[file.hash] != nil
        if progress.folderKeyHash == file.hash { file.done.append(Row(folderKey, nil)) }
        if file.ordered {
            // Ordered, so were its prefixes: the rows sent under a shorter content of its name are
            // its first ones. Checked even when it has rows of its own, so that a prefix's stale
            // row goes with it and never resumes a later content from fewer rows than were sent.
            file.candidates = progress.begun.filter {
                $0.name == file.name && $0.length < file.length && $0.hash != file.hash
            }
        }
        taking = file
        guard file.candidates.isEmpty else { return [.digestPrefixes(file.candidates.map(\.length))] }
        return feed()
    }

    /// The SHA-256 of the file's first bytes for each length asked (nil: they could not be read).
    public mutating func prefixesDigested(_ digests: [String?]) -> [Action] {
        guard var file = taking else { return [] }
        let prefixes = zip(file.candidates, digests).filter { $0.0.hash == $0.1 }.map(\.0)
        file.done += prefixes.filter { !$0.finished }.map { Row(progressKey($0.hash), nil) }
        // The prefix with the most rows sent: an older, shorter one would send rows again.
        guard !file.hasOwnProgress, let grown = prefixes.max(by: { $0.rows < $1.rows }) else {
            taking = file
            return feed()
        }
        file.resumeAfter = grown.rows
        file.result = "changed"
        taking = file
        return [
            log(
                .warning, "Historian file grew after it was begun; taken after the rows already sent.",
                [
                    "file": file.name, "rows": "\(grown.rows)", "of_rows": "\(file.rows)",
                    "bytes_before": "\(grown.length)", "bytes": "\(file.length)",
                ])
        ] + feed(resumed: false)
    }

    private func feed(resumed: Bool = true) -> [Action] {
        guard let file = taking else { return [] }
        let feed = Action.feed(from: file.resumeAfter, ordered: file.ordered)
        guard resumed, file.resumeAfter > 0 else { return [feed] }
        return [
            log(
                .notice, "Resuming a historian file after its last committed rows.",
                ["file": file.name, "rows": "\(file.resumeAfter)"]),
            feed,
        ]
    }

    /// What is committed with a chunk of pass two: its progress; with the last, the file's
    /// record instead, unless its bytes changed before its end (`changed`): it keeps its progress
    /// and gets no record, and the rest is taken when the same content comes again.
    public func commit(rowsDone: Int, last: Bool, changed: String?) -> Commit {
        guard let file = taking else { return Commit() }
        let progress = "\(rowsDone) \(file.length) \(file.name)"
        let key = progressKey(file.hash)
        guard last, changed == nil else {
            return Commit(state: [Row(key, progress)] + (last ? file.done : []))
        }
        return Commit(
            state: [Row(key, nil), Row(lastKey, "\(file.hash) \(progress)")] + file.done,
            record: Record(hash: file.hash, name: file.name, rows: rowsDone, outcome: .ok, config: fingerprint))
    }

    /// Pass two ended: `rows` data rows committed; `changed` if the file's bytes were no longer
    /// those checked.
    public mutating func fed(rows: Int, changed: String?) -> [Action] {
        guard let file = taking else { return [] }
        guard let changed else {
            return [
                log(.info, "Historian file ingested.", ["file": file.name, "rows": "\(file.rows)"]),
                .count(file.result), .move(file.name, to: finished),
            ]
        }
        // Kept (whatever `on_success` says): it holds what was not taken.
        return [
            .count("changed"),
            log(
                .warning, "Historian file changed while it was taken; only the rows checked before were used.",
                ["file": file.name, "rows": "\(rows)", "of_rows": "\(file.rows)", "change": changed]),
            .move(file.name, to: .processedUnlessReplaced),
        ]
    }

    /// Pass two failed (not a stop): the file stays where it is; its chunks committed stay.
    public mutating func feedFailed(reason: String, now: Duration) -> [Action] {
        guard let file = taking else { return [] }
        return park(
            file.name, now: now, "Historian file could not be taken; left where it is, tried again later.",
            ["error": reason])
    }

    /// The move asked for was done, or not (the file stays where it is).
    public mutating func moved(_ name: String, ok: Bool, now: Duration) -> [Action] {
        if ok {
            release(name)
            return []
        }
        return park(name, now: now, "Historian file cannot be moved; left where it is, tried again later.", [:])
    }

    /// The agent stops: the file in hand stays where it is and nothing more is taken.
    public mutating func stopped() {
        taking = nil
        stopping = true
    }

    // MARK: - Helpers

    private var finished: Destination { config.onSuccess == .archive ? .processed : .deleted }

    /// Whether a file whose content is recorded is that same file, left in the folder by a stop
    /// (or a crash, or a failed move) between its record's commit and its move: recorded by this
    /// folder under this name with the outcome it has now, and not in the folder that outcome
    /// sends it to. (With `on_success: delete` the same content dropped again under the same name
    /// cannot be told from it: it is deleted as well, and nothing is appended either way.)
    private func isLeftOver(_ name: String, _ known: Known, _ outcome: Outcome) -> Bool {
        guard known.source == config.name, known.name == name, known.outcome == outcome else { return false }
        switch outcome {
        case .rejected: return !known.inRejected
        case .ok: return config.onSuccess == .delete || !known.inProcessed
        }
    }

    private mutating func duplicate(_ name: String, of known: Known) -> [Action] {
        taking = Taking(name: name)
        return [
            .count("duplicate"),
            log(
                .warning, "Historian file has the same content as one taken before; skipped.",
                ["file": name, "same_as": known.name, "outcome": known.outcome.rawValue]),
            .move(name, to: known.outcome == .rejected ? .rejected(errorText: nil) : finished),
        ]
    }

    /// Leaves file `name` where it is until its retry time or a change; the error says why and when.
    private mutating func park(_ name: String, now: Duration, _ message: String, _ metadata: [String: String])
        -> [Action]
    {
        let failures = (parked[name]?.failures ?? 0) + 1
        let delay = Self.retryDelay(failures: failures)
        if let known = seen[name] { parked[name] = (known.size, known.modified, now + delay, failures) }
        seen[name] = nil
        taking = nil
        let retry = ["file": name, "retry_in": "\(delay.components.seconds) s"]
        return [log(.error, message, metadata.merging(retry) { $1 })]
    }

    private mutating func release(_ name: String) {
        parked[name] = nil
        seen[name] = nil
        taking = nil
    }

    private func log(_ level: Log.Level, _ message: String, _ metadata: [String: String]) -> Action {
        .log(Log(level: level, message: message, metadata: metadata))
    }
}

extension HistorianFileStateMachine {
    /// The files begun and not finished, as stored with their last committed chunks.
    public struct Progress: Equatable, Sendable {
        /// Data rows committed, by content hash.
        public var rows: [String: Int] = [:]
        /// The files begun (stored as "ROWS LENGTH NAME") and the last one finished (`lastKey`):
        /// a file under one of their names that starts with their bytes is that file grown.
        public var begun: [Begun] = []
        /// The content whose progress is under the folder's key of an earlier release, if any:
        /// that row goes when the file is done.
        public var folderKeyHash: String?

        /// A file begun: its content hash, data rows committed, length in bytes and name.
        public struct Begun: Equatable, Sendable {
            public var hash: String
            public var rows: Int
            public var length: Int64
            public var name: String
            /// Whether it was finished (`lastKey`) rather than begun.
            public var finished = false

            public init(hash: String, rows: Int, length: Int64, name: String, finished: Bool = false) {
                self.hash = hash
                self.rows = rows
                self.length = length
                self.name = name
                self.finished = finished
            }
        }

        public init(_ stored: [String: String], prefix: String, folderKey: String, lastKey: String = "") {
            for (key, value) in stored where key.hasPrefix(prefix) {
                let hash = String(key.dropFirst(prefix.count))
                let parts = value.split(separator: " ", maxSplits: 2)
                guard let done = parts.first.flatMap({ Int($0) }) else { continue }
                rows[hash] = done
                if parts.count == 3, let length = Int64(parts[1]) {
                    begun.append(Begun(hash: hash, rows: done, length: length, name: String(parts[2])))
                }
            }
            begun.sort { $0.hash < $1.hash }
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
    }
}
