import Logging
import ServiceLifecycle

/// `edge-agent simulate`: a Modbus TCP line (libmodbus's server) playing a scenario, its registers
/// rewritten every few milliseconds.
public final class Simulator: Service {
    public let server: ModbusServer
    let line: LineSimulator
    let tick: Duration

    public init(scenario: SimulatorScenario, listen: HostPort, tick: Duration = .milliseconds(5)) throws {
        line = try LineSimulator(scenario)
        server = try ModbusServer(host: listen.host, port: listen.port)
        self.tick = tick
        apply(elapsed: 0)
    }

    public var port: Int { server.port }

    func apply(elapsed: Int64) {
        for write in line.writes(elapsed: elapsed) { server.write(holding: write.address, write.values) }
    }

    /// Plays the scenario until shutdown; the server goes on serving the last values until
    /// `server.stop()` (the demo freezes the line this way before it drains).
    public func run() async throws {
        let start = ContinuousClock.now
        try await untilGracefulShutdown {
            while !Task.isCancelled {
                self.apply(elapsed: (ContinuousClock.now - start).milliseconds)
                try await Task.sleep(for: self.tick)
            }
        }
    }
}
