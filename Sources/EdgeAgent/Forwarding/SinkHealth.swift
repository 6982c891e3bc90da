import EdgeAgentCore
import Synchronization

/// What a forwarder tells the rest of the agent about its sink: for `/readyz`, the log and the demo.
public final class SinkHealth: Sendable {
    public typealias Snapshot = SinkHealthSnapshot

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
