import EdgeAgentCore
import Synchronization

/// What a forwarder tells the rest of the agent about its sink: for `/readyz`, the log and the demo.
public final class SinkHealth: Sendable {
    public struct Snapshot: Sendable {
        public var delivered: Int = 0
        public var failing: FailureReason?
        /// Set while the sink answers 401/403/404: a configuration problem, not a passing fault.
        public var misconfigured: String?
        /// Set while this sink's forwarder cannot claim or settle (the outbox fails for it).
        public var outboxError: String?
        /// The last failure of any kind and when, kept after recovery (for the status page).
        public var lastError: String?
        public var lastErrorAt: Timestamp?
        public init() {}
    }

    public let name: String
    private let state = Mutex(Snapshot())

    public init(name: String) { self.name = name }

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }
}
