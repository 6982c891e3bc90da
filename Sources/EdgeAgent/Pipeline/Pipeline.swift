import AsyncAlgorithms
import EdgeAgentCore
import Foundation
import Logging
import ServiceLifecycle

/// The single producer of business events: takes readings off the bus, runs the rules, and
/// appends the events with the rule state that produced them in one transaction. When an append
/// fails (a full outbox), the rule state is not advanced: counters keep their baseline, so the
/// next reading still counts every part. Only the entries of the rule state that a reading
/// changed are stored with it (`StoredRuleState`).
public struct Pipeline: Service {
    let rules: RuleSet
    let bus: SignalBus
    let writer: OutboxWriter
    let logger: Logger
    /// Set when machines are fed by devices, whose time is the wall clock: ticks then announce
    /// downtimes and flush `min_interval` sums even while no sample comes.
    let tick: Duration?
    let health: AgentHealth?

    public init(
        rules: RuleSet, bus: SignalBus, writer: OutboxWriter, logger: Logger, tick: Duration?,
        health: AgentHealth? = nil
    ) {
        self.rules = rules
        self.bus = bus
        self.writer = writer
        self.logger = logger
        self.tick = tick
        self.health = health
    }

    public func run() async throws {
        let stored = StoredRuleState.load(writer.storedState)
        for (key, error) in stored.errors {
            logger.error(
                "Stored rule state unreadable; what it held starts again (a counter takes a new baseline).",
                metadata: ["key": "\(key)", "error": "\(error)"])
        }
        var engine = RuleEngine(rules: rules, state: stored.state)
        var held = Held(staleState: stored.stale)
        // Receiving ends at graceful shutdown (the inputs, stopped before, waited for what they
        // handed over to be taken), or when the pipeline ends: no sender waits on it after. The
        // bus is not wrapped: `cancelOnGracefulShutdown` would iterate it in a task of its own,
        // one more hand-off per reading. Ticks come through the bus like readings, for the same
        // reason (merging two sequences iterates each in a task of its own).
        defer { bus.finish() }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let tick {
                    group.addTask {
                        for await _ in AsyncTimerSequence(interval: tick, clock: .continuous) { await bus.send(.tick) }
                    }
                }
                while let signal = await bus.receive() {
                    await process(signal, tick: signal.isTick ? .now() : nil, engine: &engine, held: &held)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            bus.finish()
        }
    }

    /// What a full outbox made the pipeline hold back: the inputs' own events
    /// (`device.connection.changed`) of refused readings, appended with the first reading that
    /// commits, so a connection change is never lost. Bounded: past `limit`, the oldest go.
    /// Also the stored rule state's rows that the first commit replaces (`StoredRuleState.Loaded`).
    struct Held {
        static let limit = 1000
        var events: [Event] = []
        var paused = false
        var failing = false
        var staleState: [String] = []
    }

    /// Runs the rules on a copy of the engine and keeps the copy only if the append committed.
    /// A full outbox refuses the reading (its input events are held, its rule effects are not
    /// kept, so counters still count from the stored baseline); any other failure is retried
    /// until it passes or the agent stops. Waits end at graceful shutdown.
    func process(_ signal: Signal, tick: Timestamp?, engine: inout RuleEngine, held: inout Held) async {
        var next = engine
        var events = held.events + signal.events + next.apply(signal.samples)
        if let tick { events += next.advance(to: tick) }
        let changed = next.state.changed(from: engine.state, reading: signal.samples)
        guard !changed.isEmpty || !events.isEmpty || !signal.state.isEmpty || signal.file != nil else {
            signal.committed?(true)
            return
        }
        let rules =
            held.staleState.isEmpty
            ? StoredRuleState.rows(changed, of: next.state)
            : StoredRuleState.rewriteRows(of: next.state, removing: held.staleState)
        while !Task.isCancelled {
            do {
                try await writer.append(events, state: signal.state + rules, file: signal.file)
                if held.paused || held.failing { logger.notice("Outbox accepts events again; acquisition resumed.") }
                health?.updateOutbox {
                    $0.full = false
                    $0.appendError = nil
                }
                health?.committed(next.state, events: events)
                engine = next
                held = Held()
                signal.committed?(true)
                return
            } catch let error as OutboxError where error.code == .full {
                if !held.paused { logger.warning("Outbox full of undelivered critical events; acquisition paused.") }
                health?.updateOutbox { $0.full = true }
                held.paused = true
                held.events = Array((held.events + signal.events).suffix(Held.limit))
                signal.committed?(false)
                await pause()
                return
            } catch {
                if !held.failing {
                    logger.error("Could not append to the outbox; retrying.", metadata: ["error": "\(error)"])
                }
                health?.updateOutbox { $0.appendError = "\(error)" }
                held.failing = true
                if Task.isShuttingDownGracefully { break }  // the stored state is the last committed one
                await pause()
            }
        }
        signal.committed?(false)
    }

    /// A second between attempts, cut short by graceful shutdown.
    private func pause() async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
    }
}
