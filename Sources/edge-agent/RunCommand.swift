import ArgumentParser
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation
import Metrics
import Prometheus

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the agent in the foreground.")

    @OptionGroup var options: ConfigOption
    @Option(help: "Log line format: logfmt or json.") var logFormat: LineLogHandler.Format = .logfmt

    @Option(help: .hidden) var injectEvents: Int?
    @Option(help: .hidden) var injectRate: Double = 0
    @Option(help: .hidden) var injectBatch: Int = 100
    @Option(help: .hidden) var injectType: String = "tag.changed"
    @Option(help: .hidden) var injectSubjects: Int = 1

    func run() async throws {
        // The start's peak memory is that of its largest phase, not the sum of them all.
        Agent.releaseStartPages()
        var config: AgentConfig? = try options.load()
        Agent.releaseStartPages()
        let logger = makeLogger(format: logFormat)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        do {
            while let current = config {
                var agent = Agent(config: current, logger: logger, registry: registry)
                if let total = injectEvents {
                    let options = TestEventSource.Options(
                        total: total, rate: injectRate, batch: injectBatch, type: EventType(injectType),
                        subjects: injectSubjects)
                    agent.producers = { writer, logger in
                        [TestEventSource(options: options, writer: writer, logger: logger)]
                    }
                }
                config = try await agent.run()
            }
        } catch let error as ConfigError {
            printError(error)
            throw Exit.invalidConfig
        } catch {
            logger.critical("Agent failed.", metadata: ["error": "\(error)"])
            throw Exit.runtimeFailure
        }
    }
}
