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

    /// Records what the forwarder's state machine says changed, at the wall-clock time.
    func apply(_ change: ForwarderStateMachine.HealthChange) {
        let now = Timestamp.now()
        state.withLock { health in
            switch change {
            case let .delivered(count):
                health.delivered += count
            case let .failed(reason):
                if reason.isPassing { health.failing = reason }
                (health.lastError, health.lastErrorAt) = ("\(reason)", now)
            case let .misconfigured(status):
                health.failing = .auth
                health.misconfigured = "HTTP \(status)"
                (health.lastError, health.lastErrorAt) = ("refused: HTTP \(status)", now)
            case .recovered:
                (health.failing, health.misconfigured) = (nil, nil)
            case let .outboxFailed(error):
                health.outboxError = error
                (health.lastError, health.lastErrorAt) = ("outbox: \(error)", now)
            case .outboxRecovered:
                health.outboxError = nil
            }
        }
    }
}
