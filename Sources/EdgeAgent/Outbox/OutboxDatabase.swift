import EdgeAgentCore
import Foundation

/// The outbox database on one connection. The agent's writer owns one (confined to its thread);
/// each forwarder and each CLI command opens its own: WAL lets them read while the writer writes.
public final class OutboxDatabase {
    public let options: OutboxOptions
    let db: SQLiteConnection
    /// Builds the envelopes of what is appended without an `EnvelopeHandoff` (CLI, notices).
    var encoder: EnvelopeEncoder
    var lastSequence: Int64 = 0
    /// Set when a write failed: `lastSequence` may count numbers that were rolled back.
    var sequenceInDoubt = false
    /// Set while a `sync: full` outbox commits without fsync (`fsyncCommits`: settlements).
    var relaxed = false
    let insertEvent: SQLiteStatement
    /// The producers' state rows: written or removed with nearly every append.
    let upsertState: SQLiteStatement
    let deleteState: SQLiteStatement
    /// The writer's: checkpoints beside its commits (`openForWriting`).
    private(set) var checkpointer: OutboxCheckpointer?

    /// How the agent found its database at start: what `/readyz` and the log report.
    public struct OpenReport: Sendable {
        /// Set when a new database was started: `first_start`, `missing` or `quarantined`.
        public var createdReason: String?
        public var quarantinedTo: String?
        /// The outbox's identity (`meta.outbox_id`), unique to each database.
        public var outboxID = ""
    }

    /// What `openForWriting` found.
    public internal(set) var openReport = OpenReport()

    private init(options: OutboxOptions, connection: SQLiteConnection) throws {
        try connection.execute("PRAGMA journal_mode=WAL")
        try connection.execute("PRAGMA synchronous=\(options.sync == .full ? "FULL" : "NORMAL")")
        // Keep the WAL well under max_size, and have it shrink back after each checkpoint.
        try connection.execute("PRAGMA wal_autocheckpoint=\(options.walPages)")
        try connection.execute("PRAGMA journal_size_limit=\(options.walBytes)")
        try OutboxSchema.migrate(connection)
        self.options = options
        self.db = connection
        self.encoder = EnvelopeEncoder(source: options.source)
        self.insertEvent = try connection.prepare(
            "INSERT INTO events(seq, id, type, class, time_ms, recorded_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        self.upsertState = try connection.prepare(
            "INSERT INTO state(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        self.deleteState = try connection.prepare("DELETE FROM state WHERE key = ?1")
        lastSequence = try committedSequence()
        Self.keepOwnership(of: options.databasePath)
    }

    deinit {
        checkpointer?.stop()
        Self.keepOwnership(of: options.databasePath)
    }

    /// Opens an existing outbox for the CLI or a forwarder; never creates one.
    public static func openExisting(_ options: OutboxOptions) throws -> OutboxDatabase {
        guard FileManager.default.fileExists(atPath: options.databasePath) else {
            throw OutboxError(.notFound, "no outbox database at \(options.databasePath)")
        }
        return try OutboxDatabase(options: options, connection: SQLiteConnection(path: options.databasePath))
    }

    /// An operator running `outbox ...` as root on the service's database must not leave files
    /// the service's (dynamic) user cannot open: SQLite's `-wal` and `-shm` files it created get
    /// the database file's owner (checked when a connection is let go, before it closes).
    public static func keepOwnership(of path: String) {
        guard geteuid() == 0 else { return }
        var database = stat()
        guard stat(path, &database) == 0, database.st_uid != 0 || database.st_gid != 0 else { return }
        for suffix in ["-wal", "-shm"] {
            var file = stat()
            if stat(path + suffix, &file) == 0, file.st_uid != database.st_uid || file.st_gid != database.st_gid {
                _ = chown(path + suffix, database.st_uid, database.st_gid)
            }
        }
    }

    /// Opens the agent's outbox: moves one marked damaged (`OutboxIntegrityCheck`) or too damaged to
    /// open to `quarantine/`, starts a new one (with an `outbox.created` event) where there is none,
    /// registers the sinks. The full integrity check of a database that opens is not done here:
    /// it reads every page, so the agent runs it beside the first readings (`OutboxIntegrityCheck`).
    ///
    /// Only damage quarantines (`SQLiteError.isDamage`, or `quick_check` finding a problem). Any
    /// other failure (a full disk, an I/O error, a lock) is thrown with the outbox left where it
    /// is, for the caller to try again. A database whose creation did not finish (no `created_ms`:
    /// the disk filled while it was made) is finished on the next open, `outbox.created` included.
    public static func openForWriting(_ options: OutboxOptions, now: Timestamp = .now()) throws -> (
        OutboxDatabase, OpenReport
    ) {
        let fm = FileManager.default
        try fm.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        var report = OpenReport()
        func quarantined(_ problem: String) throws {
            report.quarantinedTo = try quarantine(options, now: now, problem: problem)
            report.createdReason = "quarantined"
        }
        let newReason = fm.fileExists(atPath: options.markerPath) ? "missing" : "first_start"
        if fm.fileExists(atPath: options.databasePath) {
            if let problem = try? String(contentsOfFile: options.damagedPath, encoding: .utf8) {
                try quarantined(problem.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        } else {
            report.createdReason = newReason
        }
        try? fm.removeItem(atPath: options.damagedPath)
        let database: OutboxDatabase
        do {
            database = try OutboxDatabase(options: options, connection: SQLiteConnection(path: options.databasePath))
        } catch {
            guard report.createdReason == nil, let problem = try damage(options.databasePath, opening: error) else {
                throw error
            }
            try quarantined(problem)
            database = try OutboxDatabase(options: options, connection: SQLiteConnection(path: options.databasePath))
        }
        if report.createdReason == nil, try database.metaValue("created_ms") == nil {
            report.createdReason = newReason
        }
        if let reason = report.createdReason {
            try database.db.transaction {
                try database.setMeta("source", options.source)
                try database.setMeta("created_ms", String(now.milliseconds))
                try database.registerSinks(startAtEnd: false)
                try database.insert(
                    [
                        Event(
                            type: .outboxCreated, subject: options.agentID, time: now,
                            data: ["reason": .string(reason)])
                    ], now: now)
            }
            _ = fm.createFile(atPath: options.markerPath, contents: Data(reason.utf8))
        } else {
            try database.db.transaction { try database.registerSinks(startAtEnd: true) }
        }
        report.outboxID = try database.metaValue("outbox_id") ?? ""
        database.openReport = report
        database.checkpointBeside()
        return (database, report)
    }

    /// Moves the WAL's checkpoints off the commits to a thread of their own (`OutboxCheckpointer`).
    private func checkpointBeside() {
        let checkpointer = OutboxCheckpointer(
            path: options.databasePath, pages: Int(options.walPages),
            synchronous: options.sync == .full ? "FULL" : "NORMAL")
        db.onCommit { [unowned db] pages in
            checkpointer.committed(pages) { db.checkpoint() }
        }
        self.checkpointer = checkpointer
    }

    /// A sink seen for the first time starts after the newest event (an existing backlog is not
    /// flooded into a new destination; `outbox replay` backfills it). On a new database it starts at 1.
    private func registerSinks(startAtEnd: Bool) throws {
        let statement = try db.prepare("INSERT OR IGNORE INTO sinks(name, cursor) VALUES (?1, ?2)")
        for sink in options.sinks {
            try statement.run([.text(sink.name), .int(startAtEnd ? lastSequence : 0)])
        }
    }

    /// Why the database at `path`, which failed to open with `error`, is damaged; nil when it is
    /// not (then `error` is the machine's state or the schema's, not the file's).
    static func damage(_ path: String, opening error: any Error) throws -> String? {
        if let error = error as? SQLiteError, error.isDamage { return "\(error)" }
        return try integrityProblem(path)
    }

    /// `integrityProblem` of the database at `path` on a connection of its own.
    static func integrityProblem(_ path: String) throws -> String? {
        do {
            return try integrityProblem(try SQLiteConnection(path: path))
        } catch let error as SQLiteError where error.isDamage {
            return "\(error)"
        }
    }

    /// nil when `PRAGMA quick_check` says `ok`, else the problem it (or SQLite reading a damaged
    /// page) found. A failure that is not damage (`SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_BUSY`,
    /// `SQLITE_NOMEM`) is thrown: it says nothing about the file.
    static func integrityProblem(_ connection: SQLiteConnection) throws -> String? {
        do {
            let statement = try connection.prepare("PRAGMA quick_check")
            guard try statement.step() else { return "quick_check returned nothing" }
            let result = statement.text(0)
            return result == "ok" ? nil : result
        } catch let error as SQLiteError where error.isDamage {
            return "\(error)"
        }
    }

    /// Marks the database for quarantine at its writer's next open.
    static func markDamaged(_ options: OutboxOptions, problem: String) throws {
        try Data((problem + "\n").utf8).write(to: URL(fileURLWithPath: options.damagedPath))
    }

    private static func quarantine(_ options: OutboxOptions, now: Timestamp, problem: String) throws -> String {
        let fm = FileManager.default
        let folder = options.directory + "/quarantine"
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let stamp = now.rfc3339.replacingOccurrences(of: ":", with: "")
        let target = "\(folder)/outbox-\(stamp).db"
        for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: options.databasePath + suffix) {
            try fm.moveItem(atPath: options.databasePath + suffix, toPath: target + suffix)
        }
        try? Data((problem + "\n").utf8).write(to: URL(fileURLWithPath: target + ".reason.txt"))
        return target
    }

    func metaValue(_ key: String) throws -> String? {
        let statement = try db.cached("SELECT value FROM meta WHERE key = ?1")
        defer { statement.reset() }
        try statement.bind([.text(key)])
        return try statement.step() ? statement.text(0) : nil
    }

    func setMeta(_ key: String, _ value: String) throws {
        try db.cached(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        )
        .run([.text(key), .text(value)])
    }

    /// The producers' stored state (rule state, file checkpoints), written with the events it produced.
    public func loadState() throws -> [String: String] {
        let statement = try db.prepare("SELECT key, value FROM state")
        var result: [String: String] = [:]
        while try statement.step() { result[statement.text(0)] = statement.text(1) }
        return result
    }

    /// The pages in use plus the WAL file as it is on disk (the quota counts the WAL as its budget).
    public func sizeInBytes() throws -> Int64 {
        try dataBytes() + Self.fileSize(options.databasePath + "-wal")
    }

    /// A plain `stat`: this runs before every append (`enforceQuota`), and Foundation's
    /// `attributesOfItem` also resolves the owner's user and group names (reading `/etc/passwd` and
    /// `/etc/group`) each time.
    static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// The database file and its WAL as they are on disk.
    public func fileBytes() -> Int64 {
        Self.fileSize(options.databasePath) + Self.fileSize(options.databasePath + "-wal")
    }
}
