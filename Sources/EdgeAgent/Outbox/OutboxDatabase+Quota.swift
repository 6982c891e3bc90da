import EdgeAgentCore

/// `max_size` (SPEC 5.3): make room by purging delivered events, then dropping the oldest
/// undelivered low, then normal events; critical events are never dropped.
///
/// The WAL counts as its budget (`OutboxOptions.walBytes`), not as the file's size: the data gets
/// the rest of `max_size`. The file's size depends on when checkpoints last ran, so counting it
/// would make an append's acceptance depend on them too.
extension OutboxDatabase {
    func dataBytes() throws -> Int64 {
        let pageSize = try db.scalar("PRAGMA page_size") ?? 4096
        return ((try db.scalar("PRAGMA page_count") ?? 0) - (try db.scalar("PRAGMA freelist_count") ?? 0)) * pageSize
    }

    /// The lowest cursor of the configured sinks: every event at or below it is delivered everywhere.
    func deliveredThrough() throws -> Int64 {
        let names = options.sinks.map(\.name)
        guard !names.isEmpty else { return lastSequence }
        let placeholders = names.indices.map { "?\($0 + 1)" }.joined(separator: ",")
        let statement = try db.prepare("SELECT min(cursor) FROM sinks WHERE name IN (\(placeholders))")
        try statement.bind(names.map { .text($0) })
        guard try statement.step(), !statement.isNull(0) else { return 0 }
        return statement.int(0)
    }

    /// Runs in its own transaction before an append, so what it dropped stays dropped even
    /// when the append that follows finds the outbox full. `room`: the bytes of an append that
    /// overflowed (`Overflow`); room is then made for it as a whole, whatever the size now.
    /// Returns the data's size as it leaves it: the append measures its own commit against it.
    @discardableResult
    func enforceQuota(now: Timestamp, room: Int64 = 0) throws -> Int64 {
        let data = try dataBytes()
        guard room > 0 || data + options.walBytes >= options.maxSize else { return data }
        let target = min(
            max(options.maxSize * 3 / 4 - options.walBytes, options.maxSize / 2),
            options.maxSize - options.walBytes - room)
        try db.transaction {
            let through = try deliveredThrough()
            try purgeDelivered(through: through, before: Int64.max, until: target)
            var dropped: [(Int64, String)] = []
            for dropClass in [EventType.DropClass.low, .normal] {
                // The drop notices themselves are kept: they are the account of what was lost.
                let select = try db.prepare(
                    """
                    SELECT seq, type FROM events WHERE class = ?1 AND seq > ?2 AND type != 'outbox.events.dropped'
                    ORDER BY seq LIMIT 500
                    """)
                while try dataBytes() > target {
                    try select.bind([.int(Int64(dropClass.rawValue)), .int(through)])
                    var chunk: [(Int64, String)] = []
                    while try select.step() { chunk.append((select.int(0), select.text(1))) }
                    guard let last = chunk.last else { break }
                    try db.prepare(
                        """
                        DELETE FROM events WHERE class = ?1 AND seq > ?2 AND seq <= ?3 AND type != 'outbox.events.dropped'
                        """
                    ).run([.int(Int64(dropClass.rawValue)), .int(through), .int(last.0)])
                    try db.prepare("DELETE FROM requeue WHERE seq <= ?1 AND seq NOT IN (SELECT seq FROM events)").run([
                        .int(last.0)
                    ])
                    dropped += chunk
                }
            }
            if !dropped.isEmpty {
                var byType: [String: Int64] = [:]
                for (_, type) in dropped { byType[type, default: 0] += 1 }
                let data: JSONValue = [
                    "count": .int(Int64(dropped.count)),
                    "by_type": .object(byType.keys.sorted().map { ($0, .int(byType[$0]!)) }),
                    "first_sequence": .int(dropped.map(\.0).min()!),
                    "last_sequence": .int(dropped.map(\.0).max()!),
                ]
                try insert([Event(type: .eventsDropped, subject: options.agentID, time: now, data: data)], now: now)
            }
        }
        let left = try dataBytes()
        if left + room >= options.maxSize - options.walBytes {
            throw OutboxError(.full, "the outbox is full of undelivered critical events")
        }
        return left
    }

    /// Deletes delivered events (not dead-lettered, not re-queued) recorded before `before`,
    /// oldest first, until the data is down to `until` bytes (or all of them, with 0), or `limit`
    /// events are gone.
    @discardableResult
    func purgeDelivered(through: Int64, before: Int64, until target: Int64, limit: Int = .max) throws -> Int {
        let delete = try db.prepare(
            """
            DELETE FROM events WHERE seq IN (
                SELECT seq FROM events WHERE seq <= ?1 AND recorded_ms < ?2
                AND seq NOT IN (SELECT seq FROM dead) AND seq NOT IN (SELECT seq FROM requeue)
                ORDER BY seq LIMIT ?3)
            """)
        var total = 0
        repeat {
            try delete.run([.int(through), .int(before), .int(Int64(min(2000, limit - total)))])
            let n = db.changes
            total += n
            if n == 0 || total >= limit { break }
        } while try dataBytes() > target
        return total
    }

    /// `retain_delivered`: purges what every sink has had for longer than the retention, at most
    /// `limit` events in this transaction (the writer's other work waits for it; the caller
    /// repeats). Returns how many events were purged.
    @discardableResult
    public func purgeRetained(now: Timestamp = .now(), limit: Int = .max) throws -> Int {
        try db.transaction {
            try purgeDelivered(
                through: try deliveredThrough(), before: now.milliseconds - options.retainDelivered, until: 0,
                limit: limit)
        }
    }
}
