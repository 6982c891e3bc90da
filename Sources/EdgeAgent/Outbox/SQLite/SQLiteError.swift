import CSQLite

#if canImport(Glibc)
    import Glibc
#endif

/// A failed SQLite call: its result code, SQLite's message, the statement, and the operating
/// system's error under it. The code is a value so a caller decides on what happened (a full
/// disk waits, damage quarantines) without reading the message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The extended result code as SQLite returned it (`SQLITE_IOERR_WRITE`, `SQLITE_FULL`, ...).
    public let code: SQLiteResultCode
    public let message: String
    public let sql: String?
    /// The `errno` of the system call that failed under an I/O error or a failed open; nil when
    /// the failure was SQLite's own (a constraint, damage, a busy database).
    public let systemErrno: Int32?

    public init(code: SQLiteResultCode, message: String, sql: String? = nil, systemErrno: Int32? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
        self.systemErrno = systemErrno
    }

    public var description: String {
        "SQLite error \(code.rawValue) (\(code)): \(message)"
            + (systemErrno.map { " [errno \($0): \(String(cString: strerror($0)))]" } ?? "")
            + (sql.map { " (in \($0.prefix(80)))" } ?? "")
    }

    /// Whether the file itself is damaged or is no database. Nothing else is: a full disk, an
    /// I/O error, a busy or locked database, no memory, a permission are the machine's state,
    /// and a quarantine would throw a healthy outbox away for them.
    public var isDamage: Bool { code.primary == .corrupt || code.primary == .notADatabase }
}

/// An SQLite result code, primary (`SQLITE_IOERR`) or extended (`SQLITE_IOERR_WRITE`, whose low
/// byte is its primary code). Named constants are the primary codes the agent decides on.
public struct SQLiteResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(integerLiteral value: Int32) { rawValue = value }

    /// The primary code, without the extended detail.
    public var primary: SQLiteResultCode { SQLiteResultCode(rawValue: rawValue & 0xff) }

    public static let error = SQLiteResultCode(rawValue: SQLITE_ERROR)
    public static let busy = SQLiteResultCode(rawValue: SQLITE_BUSY)
    public static let locked = SQLiteResultCode(rawValue: SQLITE_LOCKED)
    public static let noMemory = SQLiteResultCode(rawValue: SQLITE_NOMEM)
    public static let readOnly = SQLiteResultCode(rawValue: SQLITE_READONLY)
    public static let ioError = SQLiteResultCode(rawValue: SQLITE_IOERR)
    public static let corrupt = SQLiteResultCode(rawValue: SQLITE_CORRUPT)
    public static let full = SQLiteResultCode(rawValue: SQLITE_FULL)
    public static let cannotOpen = SQLiteResultCode(rawValue: SQLITE_CANTOPEN)
    public static let constraint = SQLiteResultCode(rawValue: SQLITE_CONSTRAINT)
    public static let misuse = SQLiteResultCode(rawValue: SQLITE_MISUSE)
    public static let notADatabase = SQLiteResultCode(rawValue: SQLITE_NOTADB)

    /// SQLite's own English name for the code (`database or disk is full`).
    public var description: String { String(cString: sqlite3_errstr(rawValue)) }
}
