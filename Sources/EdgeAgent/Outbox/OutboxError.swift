/// What can go wrong with the outbox, with a code callers match on.
public struct OutboxError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable {
        case full, newerSchema, notFound, locked
        /// The data directory cannot be written (a full disk, an I/O error): the machine's state, not the outbox's.
        case unavailable
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
