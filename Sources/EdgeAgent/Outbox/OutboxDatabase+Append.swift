import EdgeAgentCore

/// A producer's state row, stored with the events it produced; a nil value removes the row.
public typealias StateRow = (key: String, value: String?)

/// Appending: the single writer's group commit.
extension OutboxDatabase {
    /// Appends `events` and the producers' `state` in ONE transaction (one fsync for the batch).
    /// Throws `OutboxError(.full)` and writes nothing when the outbox is full of critical events:
    /// the producer pauses and keeps its state, so no quantity is lost.
    ///
    /// The sequence moves only with what is committed: after any failure (including the quota's
    /// own committed drop notice followed by `.full`) the next append reads it back from the
    /// database, so no number is ever given twice and none is skipped.
    ///
    /// The events' envelopes come from `encoded` when the caller builds them (`OutboxWriter`:
    /// chunks in the events' order, recorded at `now`), else they are built here.
    @discardableResult
    public func append(
        _ events: [Event], state: [StateRow] = [], file: FileRecord? = nil,
        now: Timestamp = .now()
    ) throws -> ClosedRange<Int64>? {
        try append(events, state: state, file: file, now: now, encoded: nil)
    }

    func append(
        _ events: [Event], state: [StateRow], file: FileRecord?, now: Timestamp, encoded: EnvelopeHandoff?
    ) throws -> ClosedRange<Int64>? {
        do {
            if sequenceInDoubt {
                lastSequence = try committedSequence()
                sequenceInDoubt = false
            }
            try fsyncCommits(true)
            let before = try enforceQuota(now: now)
            do {
                return try commit(events, state: state, file: file, now: now, encoded: encoded, before: before)
            } catch let overflow as Overflow {
                // Too large for the room left: make room for it as a whole, then try once more.
                lastSequence = try committedSequence()
                let made = try enforceQuota(now: now, room: overflow.bytes)
                do {
                    return try commit(events, state: state, file: file, now: now, encoded: nil, before: made)
                } catch is Overflow {
                    throw OutboxError(.full, "the outbox is full of undelivered critical events")
                }
            }
        } catch {
            sequenceInDoubt = true
            throw error
        }
    }

    /// A commit that would have taken the outbox past `max_size`: rolled back, with its size.
    struct Overflow: Error {
        var bytes: Int64
    }

    /// The append's one transaction. It is measured before it commits: one that takes the data
    /// past `max_size` (less the WAL's share) is rolled back as an `Overflow`, so a large commit
    /// (a historian chunk) never overshoots the limit by its own size. `before`: the data's size
    /// the quota left, measured just before: what the commit adds is its overflow.
    private func commit(
        _ events: [Event], state: [StateRow], file: FileRecord?, now: Timestamp, encoded: EnvelopeHandoff?,
        before: Int64
    ) throws -> ClosedRange<Int64>? {
        try db.transaction {
            let sequences = try insert(events, now: now, encoded: encoded)
            for (key, value) in state {
                if let value {
                    try upsertState.run([.text(key), .text(value)])
                } else {
                    try deleteState.run([.text(key)])
                }
            }
            if let file {
                try db.prepare(
                    """
                    INSERT INTO files(hash, source, name, rows, outcome, done_ms, config)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                    ON CONFLICT(hash) DO UPDATE SET source = ?2, name = ?3, rows = ?4, outcome = ?5,
                        done_ms = ?6, config = ?7 WHERE files.outcome = 'rejected'
                    """
                ).run([
                    .text(file.hash), .text(file.source), .text(file.name), .int(Int64(file.rows)),
                    .text(file.outcome.rawValue), .int(now.milliseconds), .text(file.config),
                ])
            }
            let after = try dataBytes()
            if after > options.maxSize - options.walBytes { throw Overflow(bytes: after - before) }
            try options.faults?.check(.append)
            return sequences
        }
    }

    /// Sets whether the next commits wait for an fsync (`synchronous` FULL or NORMAL) where the
    /// outbox is configured `sync: full`: appends always do, settlements need not (`settle`).
    /// The PRAGMA runs only when the level changes; if it fails, the level is not assumed.
    func fsyncCommits(_ on: Bool) throws {
        guard options.sync == .full, on == relaxed else { return }
        // Not cached: a PRAGMA may take effect when prepared, not when run.
        try db.execute(on ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        relaxed = !on
    }

    /// The last sequence the database has committed: `meta.last_seq` moves in the same
    /// transaction as the events it numbers.
    func committedSequence() throws -> Int64 {
        Int64(try metaValue("last_seq") ?? "0") ?? 0
    }

    /// Inserts inside the caller's transaction, numbering from the last sequence; returns the
    /// sequences given. The envelopes are `encoded`'s chunks, or built here when it is nil.
    @discardableResult
    func insert(_ events: [Event], now: Timestamp, encoded: EnvelopeHandoff? = nil) throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        var inline: EncodedEvents?
        if encoded == nil {
            inline = EncodedEvents()
            for event in events { encoder.encode(event, recorded: now, into: &inline!) }
        }
        let first = lastSequence + 1
        var index = 0
        defer { insertEvent.clearBindings() }  // the id and body point into chunks about to be freed
        while var chunk = encoded?.receive() ?? inline.take() {
            for i in 0..<chunk.count {
                let event = events[index]
                index += 1
                lastSequence += 1
                chunk.number(i, lastSequence)
                try bind(event, sequence: lastSequence, now: now)
                let (start, end) = (chunk.start(i), chunk.ends[i])
                try chunk.bytes.withUnsafeBufferPointer { bytes in
                    let id = EnvelopeEncoder.idRange
                    try insertEvent.bindStatic(
                        UnsafeBufferPointer(rebasing: bytes[start + id.lowerBound..<start + id.upperBound]), at: 2)
                    try insertEvent.bindStatic(UnsafeBufferPointer(rebasing: bytes[start..<end]), at: 7)
                    try insertEvent.step()
                }
            }
        }
        precondition(index == events.count, "\(index) envelopes for \(events.count) events")
        try setMeta("last_seq", String(lastSequence))
        Telemetry.appended(events)  // counted before commit: a rolled-back batch over-counts, never under
        return first...lastSequence
    }

    private func bind(_ event: Event, sequence: Int64, now: Timestamp) throws {
        insertEvent.reset()
        try insertEvent.bind(sequence, at: 1)
        try insertEvent.bind(event.type.name, at: 3)
        try insertEvent.bind(Int64(event.type.dropClass.rawValue), at: 4)
        try insertEvent.bind(event.time.milliseconds, at: 5)
        try insertEvent.bind(now.milliseconds, at: 6)
    }
}

/// A historian file's outcome, committed with the events it produced (SPEC 7: a file is the same
/// file when its SHA-256 is the same, whatever its name). A rejection is replaced by a later
/// outcome of the same content (taken, or rejected again under another configuration); a file
/// taken is never replaced.
public struct FileRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable { case ok, rejected }
    public var hash: String
    public var source: String
    public var name: String
    public var rows: Int
    public var outcome: Outcome
    /// The fingerprint of the historian configuration the file was checked under ("" before it
    /// was recorded).
    public var config: String

    public init(hash: String, source: String, name: String, rows: Int, outcome: Outcome, config: String = "") {
        self.hash = hash
        self.source = source
        self.name = name
        self.rows = rows
        self.outcome = outcome
        self.config = config
    }
}

extension OutboxDatabase {
    /// The record of a file with this content, if one was ingested or rejected before.
    public func fileRecord(hash: String) throws -> FileRecord? {
        let statement = try db.prepare("SELECT source, name, rows, outcome, config FROM files WHERE hash = ?1")
        try statement.bind([.text(hash)])
        guard try statement.step() else { return nil }
        return FileRecord(
            hash: hash, source: statement.text(0), name: statement.text(1), rows: Int(statement.int(2)),
            outcome: FileRecord.Outcome(rawValue: statement.text(3)) ?? .ok, config: statement.text(4))
    }
}
