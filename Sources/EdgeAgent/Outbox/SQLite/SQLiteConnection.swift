import CSQLite

#if canImport(Glibc)
    import Glibc
#endif

/// One SQLite connection. Not thread-safe by design: each owner confines it to one thread
/// (see `Confined`). The only file family that imports CSQLite.
public final class SQLiteConnection {
    let handle: OpaquePointer
    public let path: String

    /// Statements prepared once and kept for the connection's life (`cached`).
    private var statements: [String: SQLiteStatement] = [:]
    /// Called after each commit with the pages in the WAL (`onCommit`).
    private var committed: ((Int) -> Void)?

    public init(path: String, readOnly: Bool = false) throws {
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let error =
                db.map { SQLiteError(rc, on: $0, sql: nil) }
                ?? SQLiteError(code: .init(rawValue: rc), message: "cannot open")
            sqlite3_close_v2(db)
            throw error
        }
        handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close_v2(handle) }

    func check(_ rc: Int32, _ sql: String? = nil) throws {
        guard rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE else {
            throw SQLiteError(rc, on: handle, sql: sql)
        }
    }

    public func execute(_ sql: String) throws {
        try check(sqlite3_exec(handle, sql, nil, nil, nil), sql)
    }

    public func prepare(_ sql: String) throws -> SQLiteStatement {
        try SQLiteStatement(connection: self, sql: sql)
    }

    /// The statement for `sql`, prepared on first use and reset on every later one: for the SQL the
    /// outbox runs for every batch (a transaction's BEGIN and COMMIT, a claim's queries, a
    /// settlement), which SQLite would otherwise parse and plan again each time. `sql` is a
    /// constant text, never one with values
    /// in it (the cache would grow with them). The caller steps it to the end or resets it: a
    /// statement left in the middle of its rows keeps its read snapshot open.
    public func cached(_ sql: String) throws -> SQLiteStatement {
        if let statement = statements[sql] {
            statement.reset()
            return statement
        }
        let statement = try SQLiteStatement(connection: self, sql: sql, cached: true)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try cached("BEGIN IMMEDIATE").run()
        do {
            let result = try body()
            try cached("COMMIT").run()
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` with a time budget: a statement still running past it is interrupted and
    /// throws (`SQLITE_INTERRUPT`). For readers that must answer quickly whatever the data.
    public func within<T>(_ budget: Duration, _ body: () throws -> T) throws -> T {
        let deadline = Deadline(
            until: Deadline.now() + UInt64(budget.components.seconds) * 1_000_000_000
                + UInt64(budget.components.attoseconds / 1_000_000_000))
        let context = Unmanaged.passRetained(deadline)
        defer {
            sqlite3_progress_handler(handle, 0, nil, nil)
            context.release()
        }
        sqlite3_progress_handler(
            handle, 1000,
            { pointer in
                let deadline = Unmanaged<Deadline>.fromOpaque(pointer!).takeUnretainedValue()
                return Deadline.now() > deadline.until ? 1 : 0
            }, context.toOpaque())
        return try body()
    }

    /// When a budget ends, on the monotonic clock (ns); read from SQLite's progress handler.
    private final class Deadline {
        let until: UInt64
        init(until: UInt64) { self.until = until }
        static func now() -> UInt64 {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        }
    }

    /// The first column of the first row, as an integer (PRAGMAs, counts).
    /// A constant `sql` (its values bound), so its statement is `cached`.
    public func scalar(_ sql: String, _ bindings: [SQLiteValue] = []) throws -> Int64? {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.int(0)
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Calls `body` after each commit on this connection with the pages the WAL then holds, in
    /// place of SQLite's automatic checkpoint (`wal_autocheckpoint`): `body` decides where and
    /// when the WAL is checkpointed. It runs inside the commit's call, on this connection's thread.
    func onCommit(_ body: @escaping (Int) -> Void) {
        committed = body
        sqlite3_wal_hook(
            handle,
            { context, _, _, pages in
                Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue().committed?(Int(pages))
                return SQLITE_OK
            }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// A passive checkpoint: copies into the database what of the WAL it can without waiting for
    /// readers or a checkpoint under way on another connection. True when it ran, even in part.
    @discardableResult
    func checkpoint() -> Bool {
        sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil) == SQLITE_OK
    }
}

public enum SQLiteValue: Sendable, Equatable {
    case null, int(Int64), text(String)
}

/// A prepared statement; reset and rebound for each use on the hot path.
public final class SQLiteStatement {
    unowned let connection: SQLiteConnection
    /// A statement from `prepare` keeps its connection open while it is in use; a `cached` one
    /// does not (the connection keeps it: a reference both ways would keep both forever), and
    /// is only used by code that holds the connection itself.
    private let keepsOpen: SQLiteConnection?
    let pointer: OpaquePointer
    let sql: String
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(connection: SQLiteConnection, sql: String, cached: Bool = false) throws {
        var statement: OpaquePointer?
        try connection.check(sqlite3_prepare_v2(connection.handle, sql, -1, &statement, nil), sql)
        guard let statement else {
            throw SQLiteError(code: .misuse, message: "empty statement", sql: sql)
        }
        self.connection = connection
        self.keepsOpen = cached ? nil : connection
        self.pointer = statement
        self.sql = sql
    }

    deinit { sqlite3_finalize(pointer) }

    public func bind(_ values: [SQLiteValue]) throws {
        sqlite3_reset(pointer)
        for (i, value) in values.enumerated() { try bind(value, at: Int32(i + 1)) }
    }

    public func bind(_ value: SQLiteValue, at index: Int32) throws {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(pointer, index)
        case let .int(v): rc = sqlite3_bind_int64(pointer, index, v)
        case let .text(s): rc = sqlite3_bind_text(pointer, index, s, -1, Self.transient)
        }
        try connection.check(rc, sql)
    }

    public func bind(_ v: Int64, at index: Int32) throws {
        try connection.check(sqlite3_bind_int64(pointer, index, v), sql)
    }

    public func bind(_ s: String, at index: Int32) throws {
        var s = s
        let rc = s.withUTF8 { buf in
            sqlite3_bind_text(
                pointer, index, buf.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) },
                Int32(buf.count), Self.transient)
        }
        try connection.check(rc, sql)
    }

    /// Binds bytes as UTF-8 text without copying: they must stay valid until the next step.
    public func bindStatic(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int32) throws {
        let rc = sqlite3_bind_text(
            pointer, index, UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self),
            Int32(bytes.count), nil)
        try connection.check(rc, sql)
    }

    public func reset() { sqlite3_reset(pointer) }

    /// Drops every bound value: what `bindStatic` pointed to may then be freed.
    public func clearBindings() { sqlite3_clear_bindings(pointer) }

    /// Steps once; true while there is a row.
    @discardableResult
    public func step() throws -> Bool {
        let rc = sqlite3_step(pointer)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let error = SQLiteError(rc, on: connection.handle, sql: sql)
        sqlite3_reset(pointer)
        throw error
    }

    /// Binds, runs to completion, resets.
    public func run(_ values: [SQLiteValue] = []) throws {
        try bind(values)
        while try step() {}
        sqlite3_reset(pointer)
    }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(pointer, column) == SQLITE_NULL }
    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(pointer, column) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(pointer, column) }

    public func text(_ column: Int32) -> String { String(decoding: textBytes(column), as: UTF8.self) }

    /// The column's text as stored, unchecked: valid until the next step or reset.
    public func textBytes(_ column: Int32) -> UnsafeBufferPointer<UInt8> {
        guard let p = sqlite3_column_text(pointer, column) else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(pointer, column)))
    }

    /// The column's text, `known` itself when it holds the same bytes: rows that repeat a
    /// value (a batch's handful of event types) share one string instead of one each.
    public func text(_ column: Int32, reusing known: String) -> String {
        let bytes = textBytes(column)
        var known = known
        let same = known.withUTF8 {
            $0.count == bytes.count && (bytes.isEmpty || memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
        }
        if same { return known }
        return String(decoding: bytes, as: UTF8.self)
    }

}

extension SQLiteError {
    /// The error `rc` as the connection `handle` describes it: its message and, for a failed
    /// system call, the `errno` SQLite kept.
    init(_ rc: Int32, on handle: OpaquePointer, sql: String?) {
        let errno = sqlite3_system_errno(handle)
        self.init(
            code: SQLiteResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(handle)), sql: sql,
            systemErrno: errno == 0 ? nil : errno)
    }
}
