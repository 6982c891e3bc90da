import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import EdgeAgent

/// The pipeline against a real SQLite outbox: events and the rule state commit together.
@Suite struct PipelineTests {
    let rules = RuleSet(machines: [
        press(minDowntime: .zero, counters: [RuleSet.Counter(tag: "press-1.count", range: 65536)])
    ])

    /// Runs a pipeline over `signals`, then stops it the way the agent does.
    func run(_ signals: [Signal], directory: TemporaryDirectory, maxSize: Int64 = 1 << 30) async throws -> OutboxWriter
    {
        let writer = try await OutboxWriter(options: options(directory, maxSize: maxSize))
        let bus = SignalBus()
        let pipeline = Pipeline(rules: rules, bus: bus, writer: writer, logger: Logger(label: "test"), tick: nil)
        try await whileRunning([pipeline]) {
            for signal in signals { await bus.send(signal) }
            await bus.send(Signal())  // a no-op reading: once it is taken, the ones before are committed
        }
        await writer.close()
        return writer
    }

    /// A pipeline, driven by the test through `process`, whose rules also publish `tags` (by deadband).
    func publishing(_ tags: [String: Double], in dir: TemporaryDirectory) async throws -> (OutboxWriter, Pipeline) {
        let published = RuleSet(machines: rules.machines, published: tags)
        let writer = try await OutboxWriter(options: options(dir))
        return (
            writer,
            Pipeline(rules: published, bus: SignalBus(), writer: writer, logger: Logger(label: "test"), tick: nil)
        )
    }

    func events(_ dir: TemporaryDirectory) throws -> [[String: Any]] {
        let db = try OutboxDatabase.openExisting(options(dir))
        return try db.claim(sink: "mw", filter: .all, maxEvents: 10_000, maxBytes: .max).events.map {
            try parse($0.body)
        }
    }

    /// Ticks come through the bus with the readings: a stop read long ago becomes a downtime at
    /// the next tick, though no reading follows it.
    @Test func aTickAnnouncesADowntimeWhileNoReadingComes() async throws {
        let dir = TemporaryDirectory()
        let writer = try await OutboxWriter(options: options(dir))
        let bus = SignalBus()
        let pipeline = Pipeline(
            rules: RuleSet(machines: [press(minDowntime: .seconds(30))]), bus: bus, writer: writer,
            logger: Logger(label: "test"), tick: .milliseconds(20))
        try await whileRunning([pipeline]) {
            await bus.send(Signal(samples: [at(0, "press-1.state", 0)]))
            #expect(
                await eventually {
                    (try? events(dir).contains { $0["type"] as? String == "machine.downtime.started" }) == true
                }, "announced by a tick")
        }
        await writer.close()
    }

    @Test func appendsEventsAndContinuesFromTheStoredStateAfterARestart() async throws {
        let dir = TemporaryDirectory()
        _ = try await run(
            [
                Signal(samples: [at(0, "press-1.state", 1), at(0, "press-1.count", 65530)]),
                Signal(samples: [at(1, "press-1.count", 65535)]),
                Signal(samples: [at(2, "press-1.state", 0), at(2, "press-1.count", 3)]),
            ], directory: dir)
        _ = try await run(
            [
                Signal(samples: [at(60, "press-1.state", 0), at(60, "press-1.count", 10)]),
                Signal(samples: [at(61, "press-1.state", 1)]),
            ], directory: dir)
        let all = try events(dir)
        #expect(
            all.map { $0["type"] as! String } == [
                "outbox.created", "machine.state.changed", "production.completed", "machine.state.changed",
                "machine.downtime.started", "production.completed", "production.completed", "machine.state.changed",
                "machine.downtime.ended",
            ])
        let quantities = all.compactMap { ($0["data"] as? [String: Any])?["quantity"] as? Int }
        #expect(quantities == [5, 4, 7], "65530 -> 65535 -> 3 -> (restart) -> 10: 16 parts")
        let ended = try #require(all.last?["data"] as? [String: Any])
        #expect(ended["duration_ms"] as? Int == 59_000, "the downtime open at shutdown closed after the restart")
    }

    @Test func aFullOutboxPausesWithoutLosingAPartOrAConnectionChange() async throws {
        let dir = TemporaryDirectory()
        // The counter's baseline is stored while there is room.
        _ = try await run([Signal(samples: [at(0, "press-1.count", 100)])], directory: dir, maxSize: 1 << 20)
        #expect(try events(dir).count == 1, "a baseline only: no event, but the state is stored")

        // Another producer fills the outbox with undelivered production events until it refuses more.
        let filler = try await OutboxWriter(options: options(dir, maxSize: 1 << 20))
        let padding = String(repeating: "x", count: 1000)
        // Batches of 50 until one is refused, then single events until even one is.
        var batch = 50
        var refused = false
        for _ in 0..<4000 where !refused {
            do {
                try await filler.append(
                    (0..<batch).map { _ in
                        Event(
                            type: .productionCompleted, subject: "other", time: .now(), data: ["pad": .string(padding)])
                    })
            } catch let error as OutboxError where error.code == .full {
                refused = batch == 1
                batch = 1
            }
        }
        await filler.close()
        #expect(refused)
        let before = try events(dir).count
        let disconnected = Event(
            type: .deviceConnectionChanged, subject: "press-1", time: time(2),
            data: ["device": "press-1", "connected": false, "error": "timeout"])
        let reconnected = Event(
            type: .deviceConnectionChanged, subject: "press-1", time: time(3),
            data: ["device": "press-1", "connected": true, "error": .null])
        let writer = try await OutboxWriter(options: options(dir, maxSize: 1 << 20))
        let bus = SignalBus()
        let pipeline = Pipeline(rules: rules, bus: bus, writer: writer, logger: Logger(label: "test"), tick: nil)
        let db = try OutboxDatabase.openExisting(options(dir))
        try await whileRunning([pipeline]) {
            await bus.send(Signal(samples: [at(1, "press-1.count", 140)]))
            await bus.send(Signal(samples: [at(2, "press-1.count", 160)], events: [disconnected]))
            await bus.send(Signal())
            #expect(try events(dir).count == before, "nothing appended while full")

            // The sink drains; the next reading counts everything since the stored baseline, and
            // the connection change seen while paused is appended with it, once.
            let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 100_000, maxBytes: .max)
            try db.settle(sink: "mw", claim: claim, delivered: claim.events.count, dead: [])
            await bus.send(Signal(samples: [at(3, "press-1.count", 150)], events: [reconnected]))
            await bus.send(Signal())
        }
        await writer.close()
        let after = try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: .max).events.map {
            try parse($0.body)
        }
        #expect(
            after.compactMap { ($0["data"] as? [String: Any])?["quantity"] as? Int } == [50], "100 -> 150: 50 parts")
        #expect(
            after.filter { $0["type"] as? String == "device.connection.changed" }.compactMap {
                ($0["data"] as? [String: Any])?["connected"] as? Bool
            }
                == [false, true], "the change held while full, then the one sent with the reading")
    }

    /// An outbox written before 0.7 holds the rule state whole, in one row: it is read, and the
    /// first commit replaces it by a row per entry; the counter goes on from the old baseline.
    @Test func aStateStoredWholeByAnOlderVersionIsReadAndReplacedByItsEntries() async throws {
        let dir = TemporaryDirectory()
        var old = RuleEngine(rules: rules)
        _ = old.apply([at(0, "press-1.state", 1), at(0, "press-1.count", 100)])
        let writer = try await OutboxWriter(options: options(dir))
        try await writer.append(
            [], state: [("rules", String(decoding: try JSONEncoder().encode(old.state), as: UTF8.self))])
        await writer.close()

        _ = try await run([Signal(samples: [at(5, "press-1.count", 130)])], directory: dir)
        let rows = try OutboxDatabase.openExisting(options(dir)).loadState()
        #expect(rows.keys.sorted() == ["rules.machine.press-1"], "the whole-state row is gone")
        #expect(try events(dir).compactMap { ($0["data"] as? [String: Any])?["quantity"] as? Int } == [30])
        var expected = old
        _ = expected.apply([at(5, "press-1.count", 130)])
        #expect(StoredRuleState.load(rows).state == expected.state)
    }

    /// A row that cannot be read costs only its entry (the counter takes a new baseline, no
    /// invented quantity); the others are kept, and the first commit writes the row again.
    @Test func anUnreadableRowLosesOnlyItsEntryAndIsWrittenAgain() async throws {
        let dir = TemporaryDirectory()
        var context = RuleState()
        context.values["press-1.reason"] = .int(7)
        let reason = StoredRuleState.rows([.value("press-1.reason")], of: context)
        let writer = try await OutboxWriter(options: options(dir))
        try await writer.append([], state: reason + [("rules.machine.press-1", "{\"counters\": [")])
        await writer.close()

        _ = try await run(
            [Signal(samples: [at(5, "press-1.state", 1), at(5, "press-1.count", 130)])], directory: dir)
        let stored = StoredRuleState.load(try OutboxDatabase.openExisting(options(dir)).loadState())
        #expect(stored.errors.isEmpty && stored.stale.isEmpty)
        #expect(stored.state.values["press-1.reason"] == .int(7))
        #expect(stored.state.machines["press-1"]?.counters["press-1.count"]?.last == 130)
        #expect(try events(dir).map { $0["type"] as! String } == ["outbox.created", "machine.state.changed"])
    }

    /// A reading stores the entries it changed and leaves the others as they were; a published
    /// tag that changed rewrites its device's row, with the device's other published tags.
    @Test func aReadingStoresOnlyTheEntriesItChanged() async throws {
        let dir = TemporaryDirectory()
        let (writer, pipeline) = try await publishing(["press-1.temp": 0.5, "press-1.pressure": 0.5], in: dir)
        var engine = RuleEngine(rules: pipeline.rules)
        var held = Pipeline.Held()
        let first = [
            at(0, "press-1.state", 1), at(0, "press-1.temp", .double(20)), at(0, "press-1.pressure", .double(5)),
        ]
        await pipeline.process(Signal(samples: first), tick: nil, engine: &engine, held: &held)
        // Stands in for a row the rules would not rewrite: only a changed entry replaces it.
        try await writer.append([], state: [("rules.machine.press-1", "\"untouched\"")])
        await pipeline.process(
            Signal(samples: [at(1, "press-1.temp", .double(21))]), tick: nil, engine: &engine, held: &held)
        await writer.close()
        let rows = try OutboxDatabase.openExisting(options(dir)).loadState()
        #expect(rows["rules.machine.press-1"] == "\"untouched\"")
        let published = try #require(rows["rules.published-tags.press-1"])
        #expect(StoredRuleState.load(rows).state.published == engine.state.published)
        #expect(published.contains("21") && published.contains("press-1.pressure"))
    }

    /// A device's published tags are stored in one row, whatever their values hold (quotes, line
    /// breaks); another device's tags are in a row of their own, written only when one of them changes.
    @Test func aDevicesPublishedTagsShareOneRow() throws {
        var state = RuleState()
        state.published["plc.a"] = RuleState.Published(value: .string("say \"hi\"\nbye"), quality: .good)
        state.published["plc.b"] = RuleState.Published(value: nil, quality: .bad)
        state.published["plc.d"] = RuleState.Published(value: .double(-.infinity), quality: .good)
        state.published["line2.e"] = RuleState.Published(value: .int(7), quality: .good)
        let rows = StoredRuleState.rows([.published("plc.a"), .published("plc.b")], of: state)
        #expect(rows.map(\.key) == ["rules.published-tags.plc"])
        var table: [String: String] = [:]
        for (key, value) in rows + StoredRuleState.rows([.published("line2.e")], of: state) { table[key] = value }
        let loaded = StoredRuleState.load(table)
        #expect(loaded.errors.isEmpty && loaded.stale.isEmpty)
        #expect(loaded.state.published == state.published)
    }

    /// An outbox written before the devices' rows holds a row per published tag: they are read,
    /// and the first commit replaces them by their device's row; an unchanged value is not
    /// published again.
    @Test func publishedTagsStoredOneARowByAnOlderVersionAreReadAndReplaced() async throws {
        let dir = TemporaryDirectory()
        let writer = try await OutboxWriter(options: options(dir))
        try await writer.append(
            [], state: [("rules.published.press-1.temp", "g d:20"), ("rules.published.press-1.pressure", "g d:5")])
        await writer.close()
        let (reopened, pipeline) = try await publishing(["press-1.temp": 0.5, "press-1.pressure": 0.5], in: dir)
        var engine = RuleEngine(rules: pipeline.rules, state: StoredRuleState.load(reopened.storedState).state)
        var held = Pipeline.Held(staleState: StoredRuleState.load(reopened.storedState).stale)
        await pipeline.process(
            Signal(samples: [at(1, "press-1.temp", .double(20)), at(1, "press-1.pressure", .double(6))]), tick: nil,
            engine: &engine, held: &held)
        await reopened.close()
        let rows = try OutboxDatabase.openExisting(options(dir)).loadState()
        #expect(rows.keys.filter { $0.hasPrefix("rules.published") } == ["rules.published-tags.press-1"])
        #expect(StoredRuleState.load(rows).state.published == engine.state.published)
        #expect(engine.state.published["press-1.pressure"]?.value == .double(6))
        #expect(
            try events(dir).compactMap { ($0["data"] as? [String: Any])?["tag"] as? String } == ["press-1.pressure"])
    }

    /// A float register that reads NaN or infinity (a sensor fault) is published and stored like
    /// any value: it cannot stop the pipeline, and it reads back as it was.
    @Test func aNonFiniteReadingIsStoredAndReadBack() async throws {
        let dir = TemporaryDirectory()
        let (writer, pipeline) = try await publishing(["press-1.temp": 0, "press-1.pressure": 0], in: dir)
        var engine = RuleEngine(rules: pipeline.rules)
        var held = Pipeline.Held()
        let reading = [
            at(0, "press-1.state", 1), at(0, "press-1.temp", .double(.nan)),
            at(0, "press-1.pressure", .double(-.infinity)),
        ]
        await pipeline.process(Signal(samples: reading), tick: nil, engine: &engine, held: &held)
        await writer.close()
        #expect(
            try events(dir).map { $0["type"] as! String }.sorted() == [
                "machine.state.changed", "outbox.created", "tag.changed", "tag.changed",
            ])
        let stored = StoredRuleState.load(try OutboxDatabase.openExisting(options(dir)).loadState())
        #expect(stored.errors.isEmpty)
        #expect(stored.state.published["press-1.temp"]?.value?.number?.isNaN == true)
        #expect(stored.state.published["press-1.pressure"]?.value == .double(-.infinity))
        #expect(stored.state.machines == engine.state.machines)
    }

    /// Every kind of value and published entry reads back from its row as it was written.
    @Test func storedTextReadsBackEveryKindOfValue() throws {
        let values: [TagValue] = [
            .int(-5), .int(.min), .uint(.max), .double(20.5), .double(-0.0), .double(1e-300), .double(.infinity),
            .bool(true), .bool(false), .string(""), .string("WO: 47 11 ü"), .string("s:nested"),
        ]
        for value in values {
            #expect(TagValue(storedText: Substring(value.storedText)) == value, "\(value)")
            for quality in [Sample.Quality.good, .bad] {
                let entry = RuleState.Published(value: value, quality: quality)
                #expect(StoredRuleState.published(StoredRuleState.text(entry)) == entry)
            }
        }
        #expect(values.count == 12)
        #expect(StoredRuleState.published("b") == RuleState.Published(value: nil, quality: .bad))
        for broken in ["", "x", "gi:5", "g x:5", "g i:five", "g u:-1", "g b:yes", "{\"quality\":\"good\"}"] {
            #expect(StoredRuleState.published(broken) == nil, "\(broken)")
        }
    }

    /// With the held change: a refused reading's input events are appended when the outbox takes
    /// the next one, before it, in the order they happened.
    @Test func heldEventsGoFirstOnceTheOutboxTakesEventsAgain() async throws {
        let dir = TemporaryDirectory()
        let writer = try await OutboxWriter(options: options(dir))
        var engine = RuleEngine(rules: rules, state: RuleState())
        var held = Pipeline.Held()
        held.events = [
            Event(
                type: .deviceConnectionChanged, subject: "press-1", time: time(1),
                data: ["device": "press-1", "connected": false, "error": "timeout"])
        ]
        held.paused = true
        let pipeline = Pipeline(
            rules: rules, bus: SignalBus(), writer: writer, logger: Logger(label: "test"), tick: nil)
        await pipeline.process(Signal(samples: [at(2, "press-1.state", 1)]), tick: nil, engine: &engine, held: &held)
        await writer.close()
        #expect(held.events.isEmpty && !held.paused)
        #expect(
            try events(dir).map { $0["type"] as! String } == [
                "outbox.created", "device.connection.changed", "machine.state.changed",
            ])
    }
}
