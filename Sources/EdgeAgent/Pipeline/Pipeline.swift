import AsyncAlgorithms
import Foundation
import Logging
import ServiceLifecycle

/// The single producer of business events: takes readings off the bus, runs the rules, and
/// appends the events with the rule state that produced them in one transaction. When an append
/// fails (a full outbox), the rule state is not advanced: counters keep their baseline, so the
/// next reading still counts every part.
public struct Pipeline: Service {
    static let stateKey = "rules"
    let rules: RuleSet
    let bus: SignalBus
    let writer: OutboxWriter
    let logger: Logger
    /// Set when machines are fed by devices, whose time is the wall clock: ticks then announce
    /// downtimes and flush `min_interval` sums even while no sample comes.
    let tick: Duration?
    let health: AgentHealth?

    public init(rules: RuleSet, bus: SignalBus, writer: OutboxWriter, logger: Logger, tick: Duration?, health: AgentHealth? = nil) {
        self.rules = rules
        self.bus = bus
        self.writer = writer
        self.logger = logger
        self.tick = tick
        self.health = health
    }

    public func run() async throws {
        var engine = RuleEngine(rules: rules, state: storedState())
        let signals = bus.map { Optional($0) }
        let ticks = AsyncTimerSequence(interval: tick ?? .seconds(3600), clock: .continuous).map { _ in Signal?.none }
        for await next in merge(signals, ticks).cancelOnGracefulShutdown() {
            if next == nil, tick == nil { continue }
            engine = await process(next ?? Signal(), tick: next == nil ? .now() : nil, engine: engine)
        }
    }

    private func storedState() -> RuleState {
        guard let stored = writer.storedState[Self.stateKey] else { return RuleState() }
        do {
            return try JSONDecoder().decode(RuleState.self, from: Data(stored.utf8))
        } catch {
            logger.error("Stored rule state unreadable; counters start from a new baseline.", metadata: ["error": "\(error)"])
            return RuleState()
        }
    }

    /// Runs the rules on a copy of the engine; returns the copy if the append committed, else the original.
    func process(_ signal: Signal, tick: Timestamp?, engine: RuleEngine) async -> RuleEngine {
        var next = engine
        var events = signal.events + next.apply(signal.samples)
        if let tick { events += next.advance(to: tick) }
        guard next.state != engine.state || !events.isEmpty || !signal.state.isEmpty else { return engine }
        while !Task.isCancelled {
            do {
                let json = String(decoding: try JSONEncoder().encode(next.state), as: UTF8.self)
                try await writer.append(events, state: signal.state + [(Self.stateKey, json)])
                health?.updateOutbox {
                    $0.full = false
                    $0.appendError = nil
                }
                return next
            } catch let error as OutboxError where error.code == .full {
                logger.warning("Outbox full of undelivered critical events; acquisition paused.")
                health?.updateOutbox { $0.full = true }
                try? await Task.sleep(for: .seconds(1))
                return engine  // this reading is dropped; the stored state is unchanged
            } catch {
                logger.error("Could not append to the outbox; retrying.", metadata: ["error": "\(error)"])
                health?.updateOutbox { $0.appendError = "\(error)" }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        return engine
    }
}
