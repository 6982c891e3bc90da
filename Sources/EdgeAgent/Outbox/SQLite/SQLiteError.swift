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
}
