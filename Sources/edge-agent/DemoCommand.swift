import ArgumentParser
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Simulator + agent + reference receiver in one process on loopback, with a live summary.",
        discussion:
            "Runs edge-config/demo.yaml against the simulated line. --outage cuts the receiver for a while to show the backlog build in the outbox and drain. Ctrl-C ends it."
    )

    @Option(help: "The agent configuration to run.") var config = "edge-config/demo.yaml"
    @Option(help: "Stop after this long (e.g. 30s); then wait for the backlog to drain. Default: until Ctrl-C.")
    var duration: String?
    @Option(help: "Cut the receiver for this long (e.g. 10s), a third of the way in (or after 10 s).") var outage:
        String?
    @Option(help: "Keep the demo's outbox, received events and log here (default: a new folder under /tmp).")
    var directory: String?

    func run() async throws {
        let duration = try duration.map { try parse($0, "--duration") }
        let outage = try outage.map { try parse($0, "--outage") }
        let directory = directory ?? NSTemporaryDirectory() + "edge-agent-demo-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let demo = Demo(
            options: .init(config: config, duration: duration, outage: outage, directory: directory),
            screen: DemoScreen(tty: isatty(STDOUT_FILENO) == 1))
        let summary: Demo.Summary
        do {
            summary = try await demo.run()
        } catch let error as ConfigError {
            printError(error)
            throw Exit.invalidConfig
        }
        print(
            """
            == edge-agent demo: final summary
            appended:        \(summary.appended) events
            received:        \(summary.received) unique events at the reference receiver
            backlog peak:    \(summary.backlogPeak) events waited in the outbox during the outage
            backlog at end:  \(summary.backlogAtEnd)\(summary.backlogAtEnd == 0 ? " (drained)" : "")
            by type:         \(summary.byType.keys.sorted().map { "\($0)=\(summary.byType[$0]!)" }.joined(separator: " "))
            files:           \(directory) (data/outbox.db, received.db, agent.log)
            status page:     \(summary.page.map { "\($0) (served while the demo ran)" } ?? "none: ports 9108 to 9127 were taken")
            latest of each kind:
            \(summary.latest.joined(separator: "\n"))
            the simulator's ground truth beside what the receiver got:
            \(summary.truth.joined(separator: "\n"))
            """)
        // A timed run promises a drained backlog and the truth kept; Ctrl-C may leave a batch
        // pending or a line mid-cycle, and that is fine.
        if duration != nil, !summary.drained || !summary.truthHolds { throw Exit.runtimeFailure }
    }

    func parse(_ text: String, _ option: String) throws -> Duration {
        guard let d = TimeArgument.duration(text) else { throw ValidationError("\(option): a duration such as 30s") }
        return d
    }
}
