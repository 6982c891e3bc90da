import EdgeAgentCore
import Logging
import Prometheus
import ServiceLifecycle

/// The spine: opens the outbox, builds one service per stage in data-flow order, runs them in
/// one `ServiceGroup`. Shutdown stops them in reverse: inputs first, forwarders last.
public struct Agent {
    public let config: AgentConfig
    public let logger: Logger
    /// Where `/metrics` reads from; without one (tests, the demo) there is no status endpoint.
    public var registry: PrometheusCollectorRegistry?
    /// More producers, started with the inputs: the test hook of `run --inject-events`.
    public var producers: (@Sendable (OutboxWriter, Logger) -> [any Service])?

    public init(
        config: AgentConfig, logger: Logger, registry: PrometheusCollectorRegistry? = nil,
        producers: (@Sendable (OutboxWriter, Logger) -> [any Service])? = nil
    ) {
        self.config = config
        self.logger = logger
        self.registry = registry
        self.producers = producers
    }

    /// Runs until SIGTERM/SIGINT or `stop` returns (then returns nil), or until SIGHUP brings a
    /// valid new configuration (returns it, after a clean stop, for the caller to run next), or
    /// until the outbox fails its integrity check (returns the same configuration: run it again).
    public func run(stop: (@Sendable () async -> Void)? = nil) async throws -> AgentConfig? {
        let systemd = SystemdNotifier()
        let listen = registry == nil ? nil : config.agent.httpListen.flatMap(HostPort.init)
        let opener = OutboxOpener(options: config.outboxOptions, logger: logger, listen: listen, systemd: systemd)
        guard let writer = try await opener.open() else { return nil }
        let health = AgentHealth(report: writer.report)
        // Warnings and errors also go to the status page's recent list.
        var logger = self.logger
        logger.handler = MultiplexLogHandler([logger.handler, RecentWarningsLogHandler(health: health)])
        if let reason = writer.report.createdReason {
            logger.notice(
                "Started a new outbox.",
                metadata: ["reason": "\(reason)", "path": "\(config.outboxOptions.databasePath)"])
        }
        if let moved = writer.report.quarantinedTo {
            logger.error(
                "The outbox failed its integrity check; it was moved aside.", metadata: ["quarantined": "\(moved)"])
        }

        var services: [any Service] = []
        for (i, sink) in config.sinks.enumerated() {
            let client: any EventSink
            do {
                switch sink.kind {
                case let .http(http): client = try HTTPSink(http)
                case let .mqtt(mqtt): client = try MQTTSink(mqtt, agent: config.agent)
                case let .kafka(kafka):
                    client = try KafkaSink(kafka, name: sink.name, agent: config.agent, logger: logger)
                }
            } catch {
                // Unreadable TLS material is a configuration problem: restarting will not fix it.
                let key =
                    switch sink.kind {
                    case .http: "http"
                    case .mqtt: "mqtt"
                    case .kafka: "kafka"
                    }
                throw ConfigError(issues: [
                    ConfigIssue(
                        file: config.file, line: 1, column: 1, path: "sinks[\(i)].\(key).tls",
                        message: "cannot load the TLS files: \(error)")
                ])
            }
            let forwarder = Forwarder(config: sink, sink: client, writer: writer, logger: logger)
            health.add(forwarder.health)
            services.append(forwarder)
        }
        // Purges once a minute, or as often as the retention itself when it is shorter.
        let purgeEvery = min(.seconds(60), max(.seconds(1), config.outbox.retainDelivered))
        services.append(OutboxMaintenance(writer: writer, logger: logger, interval: purgeEvery))
        if let watchdog = SystemdWatchdog(notifier: systemd) { services.append(watchdog) }
        let bus = SignalBus()
        // Always: even without rules, the inputs report their connections and must not block on the bus.
        let rules = RuleSet(config: config)
        services.append(
            Pipeline(
                rules: rules, bus: bus, writer: writer, logger: logger,
                tick: config.devices.isEmpty ? nil : .seconds(1), health: health))
        // Inputs, last: they stop first at shutdown.
        services += try DevicePoller.pollers(
            for: config.devices, bus: bus, logger: logger, health: health, ruleTags: rules.reads)
        // A chunk is committed whole: a small max_size gets small chunks, so one always fits.
        let chunk = Int(min(20_000, max(100, config.outbox.maxSize / 8192)))
        services += config.historian.map {
            HistorianIngestor(
                config: $0, bus: bus, writer: writer, rules: rules, logger: logger, chunkSamples: chunk)
        }
        if let registry, let listen = config.agent.httpListen.flatMap(HostPort.init) {
            services.append(
                StatusEndpoint(listen: listen, registry: registry, health: health, config: config, logger: logger))
        }
        services += producers?(writer, logger) ?? []

        // Said from inside the group, which handles SIGTERM and SIGINT before it starts any
        // service: a stop sent as soon as the agent says it runs is a graceful one.
        let announce: @Sendable () -> Void = { [logger, config] in
            logger.info("Agent running.", metadata: ["agent": "\(config.agent.id)", "sinks": "\(config.sinks.count)"])
            systemd.notify("READY=1\nSTATUS=running")
        }
        let reload = ConfigReloader(path: config.file, logger: logger)
        // An outbox that was there is checked beside the first readings; a new one needs no check.
        let check =
            writer.report.createdReason == nil
            ? OutboxIntegrityCheck(options: config.outboxOptions, logger: logger) : nil
        let endings: [any Service] =
            [reload] + (check.map { [$0] } ?? []) + (stop.map { [StopTrigger(wait: $0)] } ?? [])
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }
                + endings.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) }
                + ([StartupPages(logger: logger, firstCommit: writer.doorbell), Announcement(announce: announce)]
                as [any Service]).map {
                    .init(service: $0, successTerminationBehavior: .ignore)
                },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // SPEC 6: out within 10 s. Every wait ends at graceful shutdown; these bound what does not.
        configuration.maximumGracefulShutdownDuration = .seconds(7)
        configuration.maximumCancellationDuration = .seconds(2)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
        systemd.notify("STOPPING=1")
        await writer.close()
        logger.info("Agent stopped.")
        // A damaged outbox: the same configuration again, whose open quarantines it.
        return reload.newConfig ?? (check?.problem != nil ? config : nil)
    }

    /// Runs `announce` once, as the group starts its services; the group ignores that it ended.
    struct Announcement: Service {
        let announce: @Sendable () -> Void
        func run() async { announce() }
    }

    /// Ends the group cleanly when `wait` returns (the demo's `--duration`); a signal's graceful
    /// shutdown ends it too, or the group would wait for it forever.
    struct StopTrigger: Service {
        let wait: @Sendable () async -> Void
        func run() async throws { try await untilGracefulShutdown { await wait() } }
    }
}

extension Agent {
    /// Gives back the code, constants and heap pages the process has touched and freed so far
    /// (`StartupPages`); `run` calls it before and after reading the configuration.
    public static func releaseStartPages() {
        StartupPages.release()
        StartupPages.trimHeap()
    }
}
