import EdgeAgent
import Synchronization

/// Planned outbox failures: a test plans that the next N appends, claims or settlements fail with
/// a real SQLite result code (`SQLITE_BUSY`, `SQLITE_FULL`, `SQLITE_IOERR`), and every connection
/// opened with the same `OutboxOptions` fails there, inside its transaction.
public final class OutboxFaults: OutboxFaultInjection {
    public typealias Operation = OutboxOperation

    private let planned = Mutex<[Operation: (count: Int, code: SQLiteResultCode)]>([:])

    public init() {}

    /// The next `count` calls of `operation` throw `SQLiteError` with `code`.
    public func fail(_ operation: Operation, times count: Int, code: SQLiteResultCode = .ioError) {
        planned.withLock { $0[operation] = (count, code) }
    }

    /// Throws if a failure is planned for `operation`, using one up.
    public func check(_ operation: Operation) throws {
        let code: SQLiteResultCode? = planned.withLock { plan in
            guard let next = plan[operation], next.count > 0 else { return nil }
            plan[operation] = (next.count - 1, next.code)
            return next.code
        }
        if let code {
            throw SQLiteError(code: code, message: "injected \(operation) failure", sql: nil)
        }
    }
}
