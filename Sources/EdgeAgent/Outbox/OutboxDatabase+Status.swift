import EdgeAgentCore
import Foundation

/// An event a sink dead-lettered, as `outbox dead` lists it (SPEC 2, 7).
public struct DeadEvent: Sendable, Equatable {
    public var id: String
    public var sink: String
    public var sequence: Int64
    public var type: String
    public var status: Int
    public var response: String
}

extension OutboxDatabase {
    /// The sequence of the newest event appended (what the writer has committed).
    public func newestSequence() throws -> Int64 { Int64(try metaValue("last_seq") ?? "0") ?? 0 }

    public func status(now: Timestamp = .now()) throws -> OutboxStatus {
        var sinks: [String: SinkStatus] = [:]
        for sink in options.sinks {
            let cursor = try db.scalar("SELECT cursor FROM sinks WHERE name = ?1", [.text(sink.name)]) ?? lastSequence
            let filter = Self.filterSQL(sink.filter, firstParameter: 3)
            let patterns = sink.filter.sqlPatterns.map { SQLiteValue.text($0) }
            let statement = try db.prepare(
                """
                SELECT count(*), min(recorded_ms) FROM (
                    SELECT seq, recorded_ms FROM events WHERE seq > ?1 AND \(filter)
                    UNION SELECT e.seq, e.recorded_ms FROM requeue r JOIN events e ON e.seq = r.seq WHERE r.sink = ?2)
                """)
            try statement.bind([.int(cursor), .text(sink.name)] + patterns)
            _ = try statement.step()
            let pending = statement.int(0)
            let oldest = statement.isNull(1) ? nil : Double(now.milliseconds - statement.int(1)) / 1000
            sinks[sink.name] = SinkStatus(
                pending: pending,
                oldest_pending_age_s: oldest.map { max(0, $0) },
                dead: try db.scalar("SELECT count(*) FROM dead WHERE sink = ?1", [.text(sink.name)]) ?? 0,
                delivered: try db.scalar("SELECT delivered FROM sinks WHERE name = ?1", [.text(sink.name)]) ?? 0)
        }
        return OutboxStatus(outbox_bytes: fileBytes(), sinks: sinks)
    }

    public func deadEvents(sink: String? = nil, id: String? = nil) throws -> [DeadEvent] {
        let statement = try db.prepare(
            """
            SELECT e.id, d.sink, d.seq, e.type, d.status, d.response FROM dead d JOIN events e ON e.seq = d.seq
            WHERE (?1 IS NULL OR d.sink = ?1) AND (?2 IS NULL OR e.id = ?2) ORDER BY d.sink, d.seq
            """)
        try statement.bind([sink.map { .text($0) } ?? .null, id.map { .text($0) } ?? .null])
        var result: [DeadEvent] = []
        while try statement.step() {
            result.append(
                DeadEvent(
                    id: statement.text(0), sink: statement.text(1), sequence: statement.int(2),
                    type: statement.text(3), status: Int(statement.int(4)), response: statement.text(5)))
        }
        return result
    }

    /// Moves dead letters back into their sink's queue; returns how many.
    public func retryDead(sink: String? = nil, id: String? = nil) throws -> Int {
        let chosen = try deadEvents(sink: sink, id: id)
        try db.transaction {
            let requeue = try db.prepare("INSERT OR IGNORE INTO requeue(sink, seq) VALUES (?1, ?2)")
            let forget = try db.prepare("DELETE FROM dead WHERE sink = ?1 AND seq = ?2")
            for event in chosen {
                try requeue.run([.text(event.sink), .int(event.sequence)])
                try forget.run([.text(event.sink), .int(event.sequence)])
            }
        }
        return chosen.count
    }

    /// Forgets dead letters (the events go with the next retention purge); returns how many.
    public func dropDead(sink: String? = nil, id: String? = nil) throws -> Int {
        let chosen = try deadEvents(sink: sink, id: id)
        try db.transaction {
            let forget = try db.prepare("DELETE FROM dead WHERE sink = ?1 AND seq = ?2")
            for event in chosen { try forget.run([.text(event.sink), .int(event.sequence)]) }
        }
        return chosen.count
    }

    /// Re-queues retained events already past `sink`'s cursor whose `time` is in [since, until).
    public func replay(sink: String, since: Timestamp, until: Timestamp?) throws -> Int {
        guard let spec = options.sinks.first(where: { $0.name == sink }) else {
            throw OutboxError(.notFound, "no sink named \(sink) in the configuration")
        }
        let cursor = try db.scalar("SELECT cursor FROM sinks WHERE name = ?1", [.text(sink)]) ?? 0
        return try db.transaction {
            try db.prepare(
                """
                INSERT OR IGNORE INTO requeue(sink, seq) SELECT ?1, seq FROM events
                WHERE seq <= ?2 AND time_ms >= ?3 AND time_ms < ?4 AND \(Self.filterSQL(spec.filter, firstParameter: 5))
                """
            ).run(
                [.text(sink), .int(cursor), .int(since.milliseconds), .int(until?.milliseconds ?? Int64.max)]
                    + spec.filter.sqlPatterns.map { .text($0) })
            return db.changes
        }
    }
}
