import CSQLite

/// A failed SQLite call: the result code as a matchable value, SQLite's message, and the statement.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The (extended) result code, matchable against SQLite's constants.
    public struct Code: Hashable, Sendable {
        public let rawValue: Int32
    }

    public let code: Code
    public let message: String
    public let sql: String?

    public var description: String {
        "SQLite error \(code.rawValue): \(message)" + (sql.map { " (in \($0.prefix(80)))" } ?? "")
    }
}
