/// The seam where a test makes the outbox fail as a failing disk would: inside the transaction of
/// an append, a claim or a settlement, with an `SQLiteError` the caller cannot tell from a real
/// one. Production options carry none; the planning implementation lives with the test support.
public protocol OutboxFaultInjection: Sendable {
    /// Throws the failure planned for `operation`, if any.
    func check(_ operation: OutboxOperation) throws
}

/// An outbox operation a failure can be injected into.
public enum OutboxOperation: Sendable, Hashable { case append, claim, settle }
