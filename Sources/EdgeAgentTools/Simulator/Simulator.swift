import EdgeAgent
import EdgeAgentCore
import Logging
import ServiceLifecycle
import Synchronization

/// `edge-agent simulate`: a Modbus TCP line (libmodbus's server) playing a scenario, its registers
/// rewritten every few milliseconds.
public final class Simulator: Service {
    public let server: ModbusServer
    public let line: LineSimulator
    let tick: Duration
    private let played = Atomic<Int64>(0)

    /// How far into the scenario the line has played, in ms.
    public var elapsed: Int64 { played.load(ordering: .relaxed) }

    public init(scenario: SimulatorScenario, listen: HostPort, tick: Duration = .milliseconds(5)) throws {
        line = try LineSimulator(scenario)
        server = try ModbusServer(host: listen.host, port: listen.port)
        self.tick = tick
        apply(elapsed: 0)
    }

    public var port: Int { server.port }

    func apply(elapsed: Int64, ended: Bool = false) {
        for write in line.writes(elapsed: elapsed, ended: ended) { server.write(holding: write.address, write.values) }
    }

    /// Plays the scenario from its start until shutdown; the server goes on serving the last
    /// values until `server.stop()`.
    public func run() async throws {
        let start = ContinuousClock.now
        try await untilGracefulShutdown {
            while !Task.isCancelled {
                let elapsed = (ContinuousClock.now - start).milliseconds
                self.apply(elapsed: elapsed)
                self.played.store(elapsed, ordering: .relaxed)
                try await Task.sleep(for: self.tick)
            }
        }
    }

    /// Ends a timed run after `run` was cancelled: every machine shows `end_state` where the line
    /// stood, so no stop is left waiting for its `min_downtime` (the demo drains after this).
    public func end() { apply(elapsed: elapsed, ended: true) }
}
