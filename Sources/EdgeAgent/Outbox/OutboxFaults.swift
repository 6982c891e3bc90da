import CSQLite
import Synchronization

/// The failure-injection seam of the outbox: a test plans that the next N appends, claims or
/// settlements fail with a real SQLite result code (`SQLITE_BUSY`, `SQLITE_FULL`, `SQLITE_IOERR`),
/// and every connection opened with the same `OutboxOptions` fails there, inside its transaction,
/// exactly as a failing disk would make it fail. Production options carry none.
public final class OutboxFaults: Sendable {
    public enum Operation: Sendable, Hashable { case append, claim, settle }

    private let planned = Mutex<[Operation: (count: Int, code: Int32)]>([:])

    public init() {}

    /// The next `count` calls of `operation` throw `SQLiteError` with `code`.
    public func fail(_ operation: Operation, times count: Int, code: Int32 = SQLITE_IOERR) {
        planned.withLock { $0[operation] = (count, code) }
    }

    /// Throws if a failure is planned for `operation`, using one up.
    func check(_ operation: Operation) throws {
        let code: Int32? = planned.withLock { plan in
            guard let next = plan[operation], next.count > 0 else { return nil }
            plan[operation] = (next.count - 1, next.code)
            return next.code
        }
        if let code {
            throw SQLiteError(code: code, message: "injected \(operation) failure", sql: nil)
        }
    }
}
