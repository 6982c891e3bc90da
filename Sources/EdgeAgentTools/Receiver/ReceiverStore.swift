import EdgeAgent
import EdgeAgentCore

/// The reference receiver's database: one row per (source, id); a duplicate is ignored.
public final class ReceiverStore {
    let db: SQLiteConnection
    private let insert: SQLiteStatement

    public init(path: String) throws {
        db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=NORMAL")
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS events(
                source TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, received_ms INTEGER NOT NULL,
                PRIMARY KEY(source, id)) WITHOUT ROWID
            """)
        insert = try db.prepare("INSERT OR IGNORE INTO events(source, id, body, received_ms) VALUES (?1, ?2, ?3, ?4)")
    }

    /// Stores a batch in one transaction; returns the events not seen before, in order.
    public func store(_ items: [EventArraySplitter.Item], now: Timestamp = .now()) throws -> [EventArraySplitter.Item] {
        try db.transaction {
            var fresh: [EventArraySplitter.Item] = []
            for item in items {
                insert.reset()
                try insert.bind(item.source, at: 1)
                try insert.bind(item.id, at: 2)
                try insert.bind(item.text, at: 3)
                try insert.bind(now.milliseconds, at: 4)
                try insert.step()
                if db.changes == 1 { fresh.append(item) }
            }
            return fresh
        }
    }
}
