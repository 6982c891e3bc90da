import CSQLite

/// A failed SQLite call: the result code, SQLite's message, and the statement.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The (extended) result code as SQLite returned it (`SQLITE_FULL`, `SQLITE_IOERR_WRITE`, ...).
    public let code: Int32
    public let message: String
    public let sql: String?

    public var description: String {
        "SQLite error \(code): \(message)" + (sql.map { " (in \($0.prefix(80)))" } ?? "")
    }

    /// The primary result code, without the extended detail (`SQLITE_IOERR_WRITE` is `SQLITE_IOERR`).
    public var primaryCode: Int32 { code & 0xff }

    /// Whether the file itself is damaged or is no database. Nothing else is: a full disk, an
    /// I/O error, a busy or locked database, no memory, a permission are the machine's state,
    /// and a quarantine would throw a healthy outbox away for them.
    public var isDamage: Bool { primaryCode == SQLITE_CORRUPT || primaryCode == SQLITE_NOTADB }
}
