/// The outbox schema, versioned through `PRAGMA user_version`. A release adds a migration
/// at the end and never edits an old one, so it opens every older database.
enum OutboxSchema {
    static let migrations: [String] = [
        // 1: events, per-sink cursors, dead letters, re-queued events, producers' state.
        """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE events(
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            class INTEGER NOT NULL,
            time_ms INTEGER NOT NULL,
            recorded_ms INTEGER NOT NULL,
            body TEXT NOT NULL);
        CREATE TABLE sinks(name TEXT PRIMARY KEY, cursor INTEGER NOT NULL, delivered INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE dead(
            sink TEXT NOT NULL, seq INTEGER NOT NULL, status INTEGER NOT NULL,
            response TEXT NOT NULL, dead_ms INTEGER NOT NULL, PRIMARY KEY(sink, seq));
        CREATE TABLE requeue(sink TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(sink, seq));
        CREATE TABLE state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
        // 2: historian files by content hash: each is ingested once, whatever its name.
        """
        CREATE TABLE files(
            hash TEXT PRIMARY KEY, source TEXT NOT NULL, name TEXT NOT NULL,
            rows INTEGER NOT NULL, outcome TEXT NOT NULL, done_ms INTEGER NOT NULL);
        """,
        // 3: the historian configuration a file was rejected under (a rejection holds for it only).
        """
        ALTER TABLE files ADD COLUMN config TEXT NOT NULL DEFAULT '';
        """,
        // 4: the outbox's identity, random and written once: a new outbox numbers its events from
        // 1 again (SPEC 7), and a sink that keeps a cursor outside (Kafka's cursor records) tells
        // this outbox's sequences from an earlier one's by it.
        """
        INSERT OR IGNORE INTO meta(key, value) VALUES ('outbox_id', lower(hex(randomblob(16))));
        """,
    ]

    static var version: Int64 { Int64(migrations.count) }

    /// Brings the database to the current version in one transaction.
    static func migrate(_ db: SQLiteConnection) throws {
        let current = try db.scalar("PRAGMA user_version") ?? 0
        guard current <= version else {
            throw OutboxError(
                .newerSchema, "the outbox database has schema version \(current), newer than this release's \(version)")
        }
        guard current < version else { return }
        try db.transaction {
            for sql in migrations[Int(current)...] { try db.execute(sql) }
            try db.execute("PRAGMA user_version = \(version)")
        }
    }
}
