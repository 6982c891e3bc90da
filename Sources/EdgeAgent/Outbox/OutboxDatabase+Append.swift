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
    @discardableResult
    public func append(
        _ events: [Event], state: [StateRow] = [], file: FileRecord? = nil,
        now: Timestamp = .now()
    ) throws -> ClosedRange<Int64>? {
        do {
            if sequenceInDoubt {
                lastSequence = try committedSequence()
                sequenceInDoubt = false
            }
            try enforceQuota(now: now)
            return try db.transaction {
                let sequences = try insert(events, now: now)
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
                        INSERT INTO files(hash, source, name, rows, outcome, done_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                        ON CONFLICT(hash) DO NOTHING
                        """
                    ).run([
                        .text(file.hash), .text(file.source), .text(file.name), .int(Int64(file.rows)),
                        .text(file.outcome.rawValue), .int(now.milliseconds),
                    ])
                }
                try options.faults?.check(.append)
                return sequences
            }
        } catch {
            sequenceInDoubt = true
            throw error
        }
    }

    /// The last sequence the database has committed: `meta.last_seq` moves in the same
    /// transaction as the events it numbers.
    func committedSequence() throws -> Int64 {
        Int64(try metaValue("last_seq") ?? "0") ?? 0
    }

    /// Inserts inside the caller's transaction, numbering from the last sequence; returns the
    /// sequences given.
    @discardableResult
    func insert(_ events: [Event], now: Timestamp) throws -> ClosedRange<Int64>? {
        guard !events.isEmpty else { return nil }
        let first = lastSequence + 1
        let statement = insertEvent
        for event in events {
            lastSequence += 1
            encoder.encode(event, sequence: lastSequence, recorded: now, into: &buffer)
            statement.reset()
            try statement.bind(lastSequence, at: 1)
            try statement.bind(event.type.name, at: 3)
            try statement.bind(Int64(event.type.dropClass.rawValue), at: 4)
            try statement.bind(event.time.milliseconds, at: 5)
            try statement.bind(now.milliseconds, at: 6)
            try buffer.withUnsafeBufferPointer { bytes in
                try statement.bindStatic(UnsafeBufferPointer(rebasing: bytes[EnvelopeEncoder.idRange]), at: 2)
                try statement.bindStatic(bytes, at: 7)
                try statement.step()
            }
        }
        try setMeta("last_seq", String(lastSequence))
        Telemetry.appended(events)  // counted before commit: a rolled-back batch over-counts, never under
        return first...lastSequence
    }
}

/// A historian file's outcome, committed with the events it produced (SPEC 7: a file is the same
/// file when its SHA-256 is the same, whatever its name).
public struct FileRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable { case ok, rejected }
    public var hash: String
    public var source: String
    public var name: String
    public var rows: Int
    public var outcome: Outcome

    public init(hash: String, source: String, name: String, rows: Int, outcome: Outcome) {
        self.hash = hash
        self.source = source
        self.name = name
        self.rows = rows
        self.outcome = outcome
    }
}

extension OutboxDatabase {
    /// The record of a file with this content, if one was ingested or rejected before.
    public func fileRecord(hash: String) throws -> FileRecord? {
        let statement = try db.prepare("SELECT source, name, rows, outcome FROM files WHERE hash = ?1")
        try statement.bind([.text(hash)])
        guard try statement.step() else { return nil }
        return FileRecord(
            hash: hash, source: statement.text(0), name: statement.text(1), rows: Int(statement.int(2)),
            outcome: FileRecord.Outcome(rawValue: statement.text(3)) ?? .ok)
    }
}
