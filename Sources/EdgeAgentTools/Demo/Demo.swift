import EdgeAgent
import EdgeAgentCore
import Foundation
import Logging
import Prometheus
import Synchronization

/// `edge-agent demo`: the simulator, the agent and the reference receiver in one process on
/// loopback, with a live summary; `outage` takes the receiver away for a while so the backlog
/// builds in the outbox and drains when it comes back.
public final class Demo: Sendable {
    public struct Options: Sendable {
        public var config: String
        public var duration: Duration?
        public var outage: Duration?
        public var directory: String
        public init(config: String, duration: Duration?, outage: Duration?, directory: String) {
            self.config = config
            self.duration = duration
            self.outage = outage
            self.directory = directory
        }
    }

    public struct Summary: Sendable {
        public var appended: Int64 = 0
        public var received = 0
        public var backlogPeak: Int64 = 0
        public var backlogAtEnd: Int64 = 0
        public var byType: [String: Int] = [:]
        /// The latest event of each kind, one line each.
        public var latest: [String] = []
        /// The simulator's ground truth beside what the receiver got.
        public var truth: [String] = []
        /// The status page's address, served while the demo ran.
        public var page: String?
        public var drained: Bool { backlogAtEnd == 0 && Int64(received) == appended }
        public var truthHolds: Bool { !truth.contains { $0.contains("MISMATCH") } }
    }

    let options: Options
    let screen: DemoScreen
    private let received = Mutex(DemoTally())
    private let agentDone = Atomic<Bool>(false)

    public init(options: Options, screen: DemoScreen) {
        self.options = options
        self.screen = screen
    }

    public func run() async throws -> Summary {
        let setup = try Setup(options: options)
        let config = setup.config
        let simulator = try Simulator(scenario: .demo, listen: setup.simulatorAddress)
        var receiver: Receiver? = try await startReceiver(setup.receiverAddress)
        let (stopped, stop) = AsyncStream.makeStream(of: Void.self)
        let agent = Task { [self, logger = setup.logger] in
            defer { agentDone.store(true, ordering: .relaxed) }
            return try await Agent(config: config, logger: logger, registry: PrometheusCollectorRegistry()).run(
                stop: { for await _ in stopped { return } })
        }
        if let page = setup.page {
            FileHandle.standardOutput.write(Data("status page: \(page) (the shift's timeline and the backlog)\n".utf8))
        }
        // The line starts once the agent has its baselines (its first state of every machine is
        // in), so the simulator's counts from zero are the ground truth of what the agent must report.
        let baseline = ContinuousClock.now + .seconds(15)
        while received.withLock({ $0.byType["machine.state.changed"] ?? 0 }) < config.machines.count,
            ContinuousClock.now < baseline,
            !agentDone.load(ordering: .relaxed)
        {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let outbox: Confined<OutboxDatabase>
        do {
            outbox = try await Confined(opening: { [options = config.outboxOptions] in
                try OutboxDatabase.openExisting(options)
            })
        } catch {
            stop.finish()
            _ = try await agent.value  // the agent's own failure, if it could not start
            throw error
        }
        let simulation = Task { try? await simulator.run() }

        var course = DemoCourse(duration: options.duration, outage: options.outage)
        let start = ContinuousClock.now
        var lastAppended: Int64 = 0
        while !agentDone.load(ordering: .relaxed) {  // Ctrl-C stops the agent
            try? await Task.sleep(for: .seconds(1))
            let (status, appended) = try await outbox.run { (try $0.status(), try $0.newestSequence()) }
            let seen = DemoCourse.Seen(
                elapsed: ContinuousClock.now - start, pending: status.sinks.values.map(\.pending).max() ?? 0,
                oldestWait: status.sinks.values.compactMap(\.oldest_pending_age_s).max() ?? 0,
                newEvents: appended - lastAppended)
            lastAppended = appended
            let actions = course.next(seen)
            for action in actions {
                switch action {
                case .stopReceiver:
                    await receiver?.close()
                    receiver = nil
                case .startReceiver:
                    receiver = try await startReceiver(setup.receiverAddress)
                case .stopLine:  // every machine idle, nothing moves: the truth is final
                    simulation.cancel()
                    await simulation.value
                    simulator.end()
                case .finish:
                    break
                }
            }
            let counts = received.withLock { $0.byType }
            screen.show(
                [
                    "edge-agent demo  \(Int(seen.elapsed.seconds))s  (Ctrl-C ends it)",
                    "sink \(config.sinks[0].name): \(course.phase.rawValue)",
                    "appended: \(appended) events, \(seen.newEvents) events/s",
                    "backlog:  \(seen.pending) pending in the outbox",
                    "received: \(counts.values.reduce(0, +)) unique events",
                ] + counts.keys.sorted().map { "  \($0): \(counts[$0]!)" }
                    + (setup.page.map { ["page:     \($0)"] } ?? []))
            if actions.contains(.finish) { break }
        }
        stop.finish()
        _ = try? await agent.value
        simulation.cancel()
        simulator.server.stop()  // after the agent: a last poll must not see the line vanish
        let (status, appended) = try await outbox.run { (try $0.status(), try $0.newestSequence()) }
        await outbox.shutdown()
        await receiver?.close()
        let tally = received.withLock { $0 }
        var summary = Summary()
        summary.appended = appended
        summary.page = setup.page
        summary.backlogPeak = course.backlogPeak
        summary.backlogAtEnd = status.sinks.values.map(\.pending).max() ?? 0
        summary.byType = tally.byType
        summary.received = tally.byType.values.reduce(0, +)
        summary.latest = tally.latest.keys.sorted().map { "  \($0): \(tally.latest[$0]!)" }
        // Only a line that was stopped at the end has a truth to hold: Ctrl-C leaves it mid-cycle.
        summary.truth =
            course.lineStopped == nil
            ? ["  (stopped early: the line was still running)"]
            : Self.truth(config: config, line: simulator.line, elapsed: simulator.elapsed, tally: tally)
        return summary
    }

    /// The configuration as the demo runs it, and where its parts listen.
    struct Setup {
        var config: AgentConfig
        var simulatorAddress: HostPort
        var receiverAddress: HostPort
        var logger: Logger
        /// The status page's address: 127.0.0.1:9108 or the next free port.
        var page: String?

        init(options: Options) throws {
            config = try ConfigLoader.load(path: options.config)
            config.agent.dataDir = options.directory + "/data"
            let port = (9108..<9128).first(where: Self.isFree)
            config.agent.httpListen = port.map { "127.0.0.1:\($0)" }
            page = port.map { "http://127.0.0.1:\($0)/" }
            guard case let .tcp(host, port)? = config.devices.first?.transport,
                let simulator = HostPort("\(host):\(port)")
            else {
                throw DemoError("the demo configuration needs a Modbus TCP device for the simulator to play")
            }
            guard case let .http(http)? = config.sinks.first?.kind, let url = URL(string: http.url),
                let port = url.port,
                let receiver = HostPort("\(url.host ?? "127.0.0.1"):\(port)")
            else {
                throw DemoError("the demo configuration needs an HTTP sink with a port for the reference receiver")
            }
            simulatorAddress = simulator
            receiverAddress = receiver
            let logFile = options.directory + "/agent.log"
            _ = FileManager.default.createFile(atPath: logFile, contents: nil)
            guard let output = FileHandle(forWritingAtPath: logFile) else { throw DemoError("cannot write \(logFile)") }
            logger = Logger(label: "edge-agent") { LineLogHandler(label: $0, format: .logfmt, output: output) }
        }

        /// Nothing listens on 127.0.0.1:`port` now (a bind succeeds).
        static func isFree(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }
    }

    /// Each configured machine that the scenario plays (same name), against the tally.
    static func truth(config: AgentConfig, line: LineSimulator, elapsed: Int64, tally: DemoTally) -> [String] {
        config.machines.flatMap { machine -> [String] in
            guard let index = SimulatorScenario.demo.machines.firstIndex(where: { $0.name == machine.name }),
                let rule = machine.state, case let .map(_, codes) = rule.source
            else { return [] }
            let downtimeStates = Set(
                codes.filter { rule.downtime.contains($0.state) }.map { UInt16(truncatingIfNeeded: $0.code) })
            var high = Double.infinity, minDuration: Int64 = 0
            if let check = machine.quality.first, case let .limits(_, h?, _) = check.condition {
                (high, minDuration) = (h, check.minDuration.milliseconds)
            }
            let truth = line.truth(
                machine: index, elapsed: elapsed, downtimeStates: downtimeStates,
                minDowntime: rule.minDowntime.milliseconds, high: high, minDuration: minDuration)
            return tally.compared(machine: machine.name, with: truth, unit: machine.materials.first?.unit ?? "kg")
        }
    }

    private func startReceiver(_ address: HostPort) async throws -> Receiver {
        try await Receiver(listen: address, database: options.directory + "/received.db") { [self] text in
            self.received.withLock { tally in
                for line in text.split(separator: "\n") { tally.add(line) }
            }
        }
    }
}

/// The live summary: redrawn in place on a terminal, plain lines otherwise.
public final class DemoScreen: Sendable {
    let tty: Bool
    private let drawn = Mutex(0)

    public init(tty: Bool) { self.tty = tty }

    public func show(_ lines: [String]) {
        var out = ""
        if tty {
            let previous = drawn.withLock { old in
                defer { old = lines.count }
                return old
            }
            if previous > 0 { out += "\u{1B}[\(previous)A" }
            out += lines.map { "\u{1B}[2K" + $0 }.joined(separator: "\n") + "\n"
        } else {
            out = lines.prefix(5).joined(separator: " | ") + "\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

public struct DemoError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
