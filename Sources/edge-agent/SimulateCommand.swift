import ArgumentParser
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation
import Logging
import ServiceLifecycle

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract:
            "A Modbus TCP line simulator: machines changing state with reason codes, counters counting and rolling over.",
        discussion:
            "Without --scenario it plays the demo line: press-1 (registers 100 state, 101 reason, 102 counter, 120 work order) and press-2 (200, 201, 202, 220)."
    )

    @Option(help: "HOST:PORT to listen on (port 0 picks a free one).") var listen: String
    @Option(help: "A scenario file (YAML).") var scenario: String?

    func run() async throws {
        guard let address = HostPort(listen) else { throw ValidationError("--listen: expected HOST:PORT") }
        let simulator: Simulator
        do {
            simulator = try Simulator(scenario: try scenario.map(SimulatorScenario.load) ?? .demo, listen: address)
        } catch let error as ModbusError {
            printError(String(describing: error))
            throw Exit.runtimeFailure
        } catch {
            printError("\(scenario ?? "scenario"): \(error)")
            throw Exit.invalidConfig
        }
        FileHandle.standardOutput.write(
            Data("edge-agent simulate: listening on \(address.host):\(simulator.port)\n".utf8))
        let logger = makeLogger(format: .logfmt)
        try await ServiceGroup(
            configuration: .init(
                services: [.init(service: simulator)], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger)
        ).run()
    }
}
