import CSQLite
import EdgeAgent
import EdgeAgentCore
import Foundation

/// `outbox.append.full|normal`: events/s through the outbox writer in 1,000-event group commits,
/// against raw sqlite3 inserts of rows of the same size, same batch, same sync mode.
enum OutboxAppendBench {
    static let events = 100_000
    static let batch = 1000
    static let rounds = 3

    /// Best of three interleaved rounds each: the machine's page cache and clock settle the same for both.
    static func run(sync: OutboxOptions.SyncMode) async throws -> BenchResult {
        let input = (0..<events).map(sampleEvent)
        var best = 0.0, bestRaw = 0.0
        for _ in 0..<rounds {
            let dir = scratchDirectory("append")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let options = OutboxOptions(
                directory: dir + "/agent", agentID: "bench", source: "/sites/s/lines/l/agents/bench",
                sync: sync, maxSize: 1 << 34, sinks: [.init(name: "mw", filter: .all)])
            let writer = try await OutboxWriter(options: options)
            let agentSeconds = try await seconds {
                for start in stride(from: 0, to: events, by: batch) {
                    try await writer.append(Array(input[start..<start + batch]))
                }
            }
            await writer.close()
            best = max(best, Double(events) / agentSeconds)

            // The same rows, built up front, inserted with nothing but the C API.
            let reader = try OutboxDatabase.openExisting(options)
            let rows = try reader.claim(sink: "mw", filter: .all, maxEvents: events + 1, maxBytes: .max).events
                .dropFirst()
            bestRaw = max(bestRaw, Double(events) / (try rawInserts(Array(rows), path: dir + "/raw.db", sync: sync)))
        }
        return BenchResult(
            bench: "outbox.append.\(sync.rawValue)", value: best, unit: "events/s",
            baseline:
                "raw sqlite3 C-API inserts, same rows, \(batch)-row transactions, synchronous=\(sync.rawValue); best of \(rounds)",
            baselineValue: bestRaw)
    }

    static func rawInserts(_ rows: [StoredEvent], path: String, sync: OutboxOptions.SyncMode) throws -> Double {
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw BenchError("cannot open \(path)") }
        defer { sqlite3_close(db) }
        func exec(_ sql: String) throws {
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
                throw BenchError(String(cString: sqlite3_errmsg(db)))
            }
        }
        try exec("PRAGMA journal_mode=WAL")
        try exec("PRAGMA synchronous=\(sync == .full ? "FULL" : "NORMAL")")
        try exec(
            """
            CREATE TABLE events(seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, class INTEGER NOT NULL,
            time_ms INTEGER NOT NULL, recorded_ms INTEGER NOT NULL, body TEXT NOT NULL)
            """)
        var statement: OpaquePointer?
        sqlite3_prepare_v2(db, "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &statement, nil)
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        return try seconds {
            for start in stride(from: 0, to: rows.count, by: batch) {
                try exec("BEGIN")
                for row in rows[start..<min(start + batch, rows.count)] {
                    sqlite3_bind_int64(statement, 1, row.sequence)
                    sqlite3_bind_text(statement, 2, row.id, -1, transient)
                    sqlite3_bind_text(statement, 3, row.type, -1, transient)
                    sqlite3_bind_int64(statement, 4, 0)
                    sqlite3_bind_int64(statement, 5, row.time.milliseconds)
                    sqlite3_bind_int64(statement, 6, row.time.milliseconds)
                    var body = row.body
                    body.withUTF8 {
                        _ = sqlite3_bind_text(
                            statement, 7, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self),
                            Int32($0.count), transient)
                    }
                    guard sqlite3_step(statement) == SQLITE_DONE else {
                        throw BenchError(String(cString: sqlite3_errmsg(db)))
                    }
                    sqlite3_reset(statement)
                }
                try exec("COMMIT")
            }
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
