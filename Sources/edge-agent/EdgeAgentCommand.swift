import ArgumentParser
import EdgeAgent
import Foundation
import Logging

@main
struct EdgeAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-agent",
        abstract: "Shop-floor events from PLCs and historians to ERP, without losing one.",
        version: EdgeAgentVersion.current,
        subcommands: [RunCommand.self, CheckCommand.self, OutboxCommand.self, ModbusCommand.self, SimulateCommand.self, ReceiveCommand.self, DemoCommand.self])
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
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw Exit.invalidConfig
        }
    }
}

func makeLogger(format: LineLogHandler.Format) -> Logger {
    LoggingSystem.bootstrap { LineLogHandler(label: $0, format: format) }
    return Logger(label: "edge-agent")
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("edge-agent: " + message + "\n").utf8))
}

extension LineLogHandler.Format: ExpressibleByArgument {}
