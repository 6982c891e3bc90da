import CSQLite

/// A failed SQLite call: the result code as a matchable value, SQLite's message, and the statement.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable {
        public let rawValue: Int32
        public var primary: Code { Code(rawValue: rawValue & 0xFF) }
        public static let busy = Code(rawValue: SQLITE_BUSY)
        public static let corrupt = Code(rawValue: SQLITE_CORRUPT)
        public static let notADatabase = Code(rawValue: SQLITE_NOTADB)
        public static let full = Code(rawValue: SQLITE_FULL)
        public static let cantOpen = Code(rawValue: SQLITE_CANTOPEN)
        public static let constraint = Code(rawValue: SQLITE_CONSTRAINT)
    }

    public let code: Code
    public let message: String
    public let sql: String?

    public var isCorruption: Bool { code.primary == .corrupt || code.primary == .notADatabase }

    public var description: String {
        "SQLite error \(code.rawValue): \(message)" + (sql.map { " (in \($0.prefix(80)))" } ?? "")
    }
}
