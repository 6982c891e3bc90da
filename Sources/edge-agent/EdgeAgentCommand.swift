import ArgumentParser
import EdgeAgent
import EdgeAgentCore
import Foundation
import Logging

@main
struct EdgeAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-agent",
        abstract: "Shop-floor events from PLCs and historians to ERP, without losing one.",
        version: EdgeAgentVersion.current,
        subcommands: [
            RunCommand.self, CheckCommand.self, OutboxCommand.self, ModbusCommand.self, SimulateCommand.self,
            ReceiveCommand.self, DemoCommand.self,
        ])
}

/// Exit codes of SPEC 2.
enum Exit {
    static let runtimeFailure = ExitCode(1)
    static let invalidConfig = ExitCode(78)
}

/// `--config FILE`, loaded and validated; a bad file prints its issues and exits 78.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file (YAML).")
    var config: String

    func load() throws -> AgentConfig {
        do {
            return try ConfigLoader.load(path: config)
        } catch let error as ConfigError {
            printError(error)
            throw Exit.invalidConfig
        }
    }
}

func makeLogger(format: LineLogHandler.Format) -> Logger {
    LoggingSystem.bootstrap { LineLogHandler(label: $0, format: format) }
    return Logger(label: "edge-agent")
}

/// The CLI's one error printer, on stderr: a configuration error as its own lines
/// (`FILE:LINE:COL: key.path: message`, SPEC 2), anything else as `edge-agent: MESSAGE`.
func printError(_ problem: some CustomStringConvertible) {
    let text = problem is ConfigError ? problem.description : "edge-agent: \(problem)"
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

extension LineLogHandler.Format: ExpressibleByArgument {}
