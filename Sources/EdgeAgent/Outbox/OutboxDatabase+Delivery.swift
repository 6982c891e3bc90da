import EdgeAgentCore

/// What forwarders do with the outbox: claim a batch in order, then settle it.
extension OutboxDatabase {
    static func filterSQL(_ filter: TypeFilter, firstParameter: Int) -> String {
        guard !filter.patterns.isEmpty else { return "1" }
        return "(" + filter.patterns.indices.map { "type GLOB ?\(firstParameter + $0)" }.joined(separator: " OR ") + ")"
    }

    /// The next batch for `sink`: re-queued events first, then the events after its cursor (or
    /// after `after`, when that is further: the end of a batch delivered but still being
    /// settled), at most `maxEvents` and `maxBytes` (but always one, however large).
    ///
    /// `holding` is what a batch the caller already holds takes of `maxBytes` (`batchBytes`; an
    /// empty one takes 2, the brackets): a linger's top-up, claimed after that batch's last
    /// event, which then adds none that would not fit.
    public func claim(
        sink: String, filter: TypeFilter, maxEvents: Int, maxBytes: Int, after: Int64 = 0, holding: Int = 0
    ) throws -> Claim {
        try options.faults?.check(.claim)
        let requeue = try db.cached(
            """
            SELECT e.seq, e.id, e.type, e.time_ms, e.body FROM requeue r JOIN events e ON e.seq = r.seq
            WHERE r.sink = ?1 ORDER BY r.seq LIMIT ?2
            """)
        try requeue.bind([.text(sink), .int(Int64(maxEvents))])
        var (events, cut) = try collect(requeue, maxBytes: maxBytes, holding: 0)
        if !events.isEmpty {
            return Claim(events: events, requeued: true, through: 0)
        }
        let cursor = max(after, try db.scalar("SELECT cursor FROM sinks WHERE name = ?1", [.text(sink)]) ?? 0)
        let newest = try db.scalar("SELECT max(seq) FROM events") ?? cursor
        let select = try db.cached(  // one text per sink's filter
            """
            SELECT seq, id, type, time_ms, body FROM events
            WHERE seq > ?1 AND seq <= ?2 AND \(Self.filterSQL(filter, firstParameter: 4)) ORDER BY seq LIMIT ?3
            """)
        try select.bind([.int(cursor), .int(newest), .int(Int64(maxEvents))] + filter.sqlPatterns.map { .text($0) })
        (events, cut) = try collect(select, maxBytes: maxBytes, holding: holding)
        let through = (cut || events.count == maxEvents) ? (events.last?.sequence ?? cursor) : max(newest, cursor)
        return Claim(events: events, requeued: false, cursor: cursor, through: through)
    }

    /// What `events` take of a batch's `maxBytes`: the brackets and a comma per event.
    public static func batchBytes(_ events: [StoredEvent]) -> Int {
        events.reduce(2) { $0 + $1.body.utf8.count + 1 }
    }

    /// The batch's rows. Their bodies are read into one buffer, which becomes one text: each
    /// event's body is a slice of it (one allocation and one UTF-8 check per batch).
    private func collect(_ statement: SQLiteStatement, maxBytes: Int, holding: Int) throws -> ([StoredEvent], Bool) {
        defer { statement.reset() }
        var events: [StoredEvent] = []
        var bodies: [UInt8] = []
        bodies.reserveCapacity(min(maxBytes, 1 << 16))
        var ends: [Int] = []
        var bytes = max(2, holding)
        var type = ""
        var cut = false
        while try statement.step() {
            let body = statement.textBytes(4)
            // Past the brackets: an event is taken or a batch is held; else one goes however large.
            if bytes > 2, bytes + body.count + 1 > maxBytes {
                cut = true
                break
            }
            bytes += body.count + 1
            if !ends.isEmpty { bodies.append(UInt8(ascii: ",")) }
            bodies.append(contentsOf: body)
            ends.append(bodies.count)
            type = statement.text(2, reusing: type)
            events.append(
                StoredEvent(
                    sequence: statement.int(0), id: statement.text(1), type: type,
                    time: Timestamp(milliseconds: statement.int(3)), body: ""))
        }
        Self.slice(bodies, ends: ends, into: &events)
        return (events, cut)
    }

    /// Gives `events` their bodies: `bodies` holds them separated by commas, each ending at its
    /// offset in `ends`. As one text, each body a slice of it; a comma ends any UTF-8 sequence,
    /// so invalid bytes of a damaged body are repaired within it, as they would be alone. A
    /// repair never shrinks the text (each invalid run of 1 to 3 bytes becomes U+FFFD, 3 bytes):
    /// an unchanged length means every repair kept its place, and the offsets hold. Only when
    /// the length changed is each body a text of its own.
    static func slice(_ bodies: [UInt8], ends: [Int], into events: inout [StoredEvent]) {
        let text = String(decoding: bodies, as: UTF8.self)
        let utf8 = text.utf8
        let whole = utf8.count == bodies.count
        var start = 0
        for (i, end) in ends.enumerated() {
            if whole {
                events[i].body =
                    text[utf8.index(utf8.startIndex, offsetBy: start)..<utf8.index(utf8.startIndex, offsetBy: end)]
            } else {
                events[i].body = String(decoding: bodies[start..<end], as: UTF8.self)[...]
            }
            start = end + 1
        }
    }

    /// Records a claim's outcome: the cursor moves to `claim.through` (or the re-queue entries go),
    /// delivered events are counted, rejected ones are dead-lettered.
    ///
    /// A settlement commits without an fsync of its own (`fsyncCommits(false)`): a power cut may
    /// take it back, which only re-sends the batch to a consumer that drops what it has seen; the
    /// next append's fsync of the WAL makes it durable with that append, and the WAL keeps the
    /// order, so no later append survives without it. On a telemetry line this makes one fsync
    /// per poll instead of two (one for the poll, one for the batch delivered), and an fsync is
    /// the slowest thing industrial flash does.
    public func settle(sink: String, claim: Claim, delivered: Int, dead: [DeadLetter], now: Timestamp = .now()) throws {
        try fsyncCommits(false)
        try db.transaction {
            try options.faults?.check(.settle)
            if claim.requeued {
                let delete = try db.cached("DELETE FROM requeue WHERE sink = ?1 AND seq = ?2")
                for event in claim.events { try delete.run([.text(sink), .int(event.sequence)]) }
                try db.cached("UPDATE sinks SET delivered = delivered + ?2 WHERE name = ?1")
                    .run([.text(sink), .int(Int64(delivered))])
            } else {
                try db.cached("UPDATE sinks SET cursor = max(cursor, ?2), delivered = delivered + ?3 WHERE name = ?1")
                    .run([.text(sink), .int(claim.through), .int(Int64(delivered))])
            }
            guard !dead.isEmpty else { return }
            let insert = try db.cached(
                """
                INSERT INTO dead(sink, seq, status, response, dead_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                ON CONFLICT(sink, seq) DO UPDATE SET status = excluded.status, response = excluded.response, dead_ms = excluded.dead_ms
                """)
            for letter in dead {
                try insert.run([
                    .text(sink), .int(letter.sequence), .int(Int64(letter.status)),
                    .text(String(letter.response.prefix(1024))), .int(now.milliseconds),
                ])
            }
        }
    }
}
