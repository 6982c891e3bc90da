import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

func options(
    _ dir: TemporaryDirectory, sinks: [OutboxOptions.SinkCursor] = [.init(name: "mw", filter: .all)],
    maxSize: Int64 = 1 << 30
) -> OutboxOptions {
    OutboxOptions(
        directory: dir.path + "/data", agentID: "a1", source: "/sites/s/lines/l/agents/a1",
        maxSize: maxSize, sinks: sinks)
}

func event(_ type: EventType = .productionCompleted, _ n: Int = 0, time: Int64 = 1_795_000_000_000) -> Event {
    Event(type: type, subject: "press-1", time: Timestamp(milliseconds: time), data: ["n": .int(Int64(n))])
}

func parse(_ body: some StringProtocol) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
}

@Suite struct OutboxDatabaseTests {
    @Test func aNewOutboxStartsAtOneWithOutboxCreated() throws {
        let dir = TemporaryDirectory()
        let (db, report) = try OutboxDatabase.openForWriting(options(dir))
        #expect(report.createdReason == "first_start")
        let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20)
        let created = try parse(try #require(claim.events.first).body)
        #expect(created["type"] as? String == "outbox.created")
        #expect(created["sequence"] as? String == "00000000000000000001")
        #expect(created["subject"] as? String == "a1")
        #expect((created["data"] as? [String: Any])?["reason"] as? String == "first_start")
    }

    /// The outbox selects with SQLite's GLOB, the pipeline with `TypeFilter.matches`: they must
    /// agree, also on the characters GLOB alone gives a meaning (`?`, `[`).
    @Test func sqlAndSwiftFiltersSelectTheSameEvents() throws {
        let types: [EventType] = [
            "machine.state.changed", "machine.x", "machineAx", "a?b", "axb", "a[b]c", "abc", "a]b", "*",
        ]
        let patterns = [["machine.*"], ["a?b"], ["a[b]c"], ["a[bc]*"], ["*]*"], ["*?*", "m*"], ["\\*"], ["*"]]
        for pattern in patterns {
            let dir = TemporaryDirectory()
            let filter = TypeFilter(pattern)
            let (db, _) = try OutboxDatabase.openForWriting(options(dir, sinks: [.init(name: "f", filter: filter)]))
            _ = try db.append(types.map { event($0) }, now: Timestamp(milliseconds: 1_795_000_000_000))
            let claimed = try db.claim(sink: "f", filter: filter, maxEvents: 100, maxBytes: 1 << 20).events.map(\.type)
            let expected = (["outbox.created"] + types.map(\.name)).filter(filter.matches)
            #expect(claimed == expected, "\(pattern)")
        }
        #expect(TypeFilter(["a?b"]).matches("a?b") && !TypeFilter(["a?b"]).matches("axb"))
    }

    @Test func envelopeCarriesEveryCloudEventsAttribute() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        #expect(
            try db.append(
                [event(.productionCompleted, 5, time: 1_795_096_428_123)],
                now: Timestamp(milliseconds: 1_795_096_429_000)) == 2...2)
        let stored = try db.claim(sink: "mw", filter: TypeFilter(["production.*"]), maxEvents: 10, maxBytes: 1 << 20)
            .events
        let body = try parse(stored[0].body)
        #expect(body["specversion"] as? String == "1.0")
        #expect(body["id"] as? String == stored[0].id)
        #expect(body["source"] as? String == "/sites/s/lines/l/agents/a1")
        #expect(body["type"] as? String == "production.completed")
        #expect(body["subject"] as? String == "press-1")
        #expect(body["time"] as? String == "2026-11-19T13:53:48.123Z")
        #expect(body["recordedtime"] as? String == "2026-11-19T13:53:49.000Z")
        #expect(body["datacontenttype"] as? String == "application/json")
        #expect(body["sequence"] as? String == "00000000000000000002")
        #expect((body["traceparent"] as? String)?.count == 55)
        #expect((body["data"] as? [String: Any])?["n"] as? Int == 5)
    }

    @Test func sequenceIsContiguousAcrossReopenAndStateIsKept() throws {
        let dir = TemporaryDirectory()
        do {
            let (db, _) = try OutboxDatabase.openForWriting(options(dir))
            try db.append((1...10).map { event(.tagChanged, $0) }, state: [("rules", "{\"v\":1}")])
        }
        let (db, report) = try OutboxDatabase.openForWriting(options(dir))
        #expect(report.createdReason == nil)
        #expect(try db.loadState() == ["rules": "{\"v\":1}"])
        #expect(try db.append([event()], state: [("rules", "{\"v\":2}")]) == 12...12)
        #expect(try db.loadState()["rules"] == "{\"v\":2}")
    }

    @Test func aMissingDatabaseIsReportedAsMissing() throws {
        let dir = TemporaryDirectory()
        _ = try OutboxDatabase.openForWriting(options(dir))
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: options(dir).databasePath + suffix)
        }
        let (_, report) = try OutboxDatabase.openForWriting(options(dir))
        #expect(report.createdReason == "missing")
    }

    /// Damage that still opens is found by the check beside the first readings, which marks the
    /// database; the next open moves it aside with the problem and starts a new one.
    @Test func aDatabaseMarkedDamagedIsQuarantinedAtTheNextOpen() throws {
        let dir = TemporaryDirectory()
        do {
            let (db, _) = try OutboxDatabase.openForWriting(options(dir))
            try db.append((1...2000).map { event(.productionCompleted, $0) })
        }
        #expect(try OutboxDatabase.integrityProblem(options(dir).databasePath) == nil)
        // Overwrite the middle of the file with garbage, as a failing flash card would.
        let path = options(dir).databasePath
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(size / 2 / 4096 * 4096))
        handle.write(Data(repeating: 0xA5, count: 16 * 1024))
        try handle.close()
        let problem = try #require(try OutboxDatabase.integrityProblem(path))
        try OutboxDatabase.markDamaged(options(dir), problem: problem)

        let (db, report) = try OutboxDatabase.openForWriting(options(dir))
        #expect(report.createdReason == "quarantined")
        let moved = try #require(report.quarantinedTo)
        #expect(FileManager.default.fileExists(atPath: moved))
        #expect(try String(contentsOfFile: moved + ".reason.txt", encoding: .utf8) == problem + "\n")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/outbox.damaged"))
        let first = try db.claim(sink: "mw", filter: .all, maxEvents: 5, maxBytes: 1 << 20).events
        #expect(first.count == 1 && first[0].sequence == 1 && first[0].body.contains("\"reason\":\"quarantined\""))
    }

    /// A file that cannot be opened as a database at all is quarantined by the open itself.
    @Test func aFileThatIsNoDatabaseIsQuarantinedAtOpen() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.path + "/data", withIntermediateDirectories: true)
        try Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(
            to: URL(fileURLWithPath: options(dir).databasePath))
        let (db, report) = try OutboxDatabase.openForWriting(options(dir))
        #expect(report.createdReason == "quarantined")
        let moved = try #require(report.quarantinedTo)
        #expect(try String(contentsOfFile: moved + ".reason.txt", encoding: .utf8).contains("not a database"))
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 5, maxBytes: 1 << 20).events.count == 1)
    }

    /// A linger's top-up: claimed after the batch it joins, it counts that batch's bytes and
    /// events against the limits, and takes no event that would not fit (not even a first one).
    @Test func aTopUpClaimCountsTheBatchItJoins() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        try db.append((0..<9).map { event(.productionCompleted, $0) })
        let batch = try db.claim(sink: "mw", filter: .all, maxEvents: 3, maxBytes: 1 << 20).events
        #expect(batch.map(\.sequence) == [1, 2, 3])
        let size = OutboxDatabase.batchBytes(batch)
        let one = OutboxDatabase.batchBytes([batch[1]]) - 2  // an event and its comma
        // Room for exactly two more of these events.
        let more = try db.claim(
            sink: "mw", filter: .all, maxEvents: 10, maxBytes: size + 2 * one + one / 2, after: 3, holding: size)
        #expect(more.events.map(\.sequence) == [4, 5])
        #expect(more.through == 5, "cut by size: the batch ends at its last event")
        // No room for any: none is taken, and the batch still ends where it did.
        let none = try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: size, after: 3, holding: size)
        #expect(none.events.isEmpty && none.through == 3)
        // Without a batch held, one event is always taken, however large.
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1, after: 3).events.count == 1)
    }

    /// The forwarder claims the next batch while the last one is being settled: a claim after
    /// that batch's end holds none of it, and the cursor ends where the later batch ends
    /// whichever settlement commits first.
    @Test func aClaimAfterABatchBeingSettledHoldsNoneOfIt() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        try db.append((1...10).map { event(.productionCompleted, $0) })
        let first = try db.claim(sink: "mw", filter: .all, maxEvents: 4, maxBytes: 1 << 20)
        let next = try db.claim(sink: "mw", filter: .all, maxEvents: 4, maxBytes: 1 << 20, after: first.through)
        #expect(first.events.map(\.sequence) == [1, 2, 3, 4] && first.through == 4)
        #expect(next.events.map(\.sequence) == [5, 6, 7, 8] && next.cursor == 4)
        try db.settle(sink: "mw", claim: next, delivered: 4, dead: [])
        try db.settle(sink: "mw", claim: first, delivered: 4, dead: [])
        let rest = try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20)
        #expect(rest.events.map(\.sequence) == [9, 10, 11] && rest.cursor == 8)
        // A claim after an older point than the cursor starts at the cursor.
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20, after: 2).cursor == 8)
    }

    @Test func aNewerSchemaIsRefused() throws {
        let dir = TemporaryDirectory()
        _ = try OutboxDatabase.openForWriting(options(dir))
        try SQLiteConnection(path: options(dir).databasePath).execute("PRAGMA user_version = 99")
        #expect(throws: OutboxError.self) { try OutboxDatabase.openForWriting(options(dir)) }
    }

    @Test func claimsInOrderAndSettlesPerSink() throws {
        let dir = TemporaryDirectory()
        let sinks: [OutboxOptions.SinkCursor] = [
            .init(name: "all", filter: .all), .init(name: "prod", filter: TypeFilter(["production.*"])),
        ]
        let (db, _) = try OutboxDatabase.openForWriting(options(dir, sinks: sinks))
        try db.append((1...6).map { event($0 % 2 == 0 ? .productionCompleted : .tagChanged, $0) })

        let prod = try db.claim(sink: "prod", filter: sinks[1].filter, maxEvents: 100, maxBytes: 1 << 20)
        #expect(prod.events.map(\.sequence) == [3, 5, 7])
        #expect(prod.through == 7)
        try db.settle(sink: "prod", claim: prod, delivered: 3, dead: [])

        let first = try db.claim(sink: "all", filter: .all, maxEvents: 4, maxBytes: 1 << 20)
        #expect(first.events.map(\.sequence) == [1, 2, 3, 4])
        try db.settle(sink: "all", claim: first, delivered: 4, dead: [])
        let second = try db.claim(sink: "all", filter: .all, maxEvents: 4, maxBytes: 1 << 20)
        #expect(second.events.map(\.sequence) == [5, 6, 7])

        let status = try db.status()
        #expect(
            status.sinks["all"]?.pending == 3 && status.sinks["all"]?.delivered == 4 && status.sinks["all"]?.dead == 0)
        #expect(status.sinks["prod"]?.pending == 0 && status.sinks["prod"]?.delivered == 3)
    }

    /// `sync: full`: every append commits with an fsync (SQLite's `synchronous` FULL = 2), a
    /// settlement without one (NORMAL = 1), also when the settlement before it failed; the
    /// settlement is still committed: another connection sees it, and so does the next start.
    @Test func appendsCommitWithFsyncSettlementsWithout() throws {
        let dir = TemporaryDirectory()
        var opts = options(dir)
        let faults = OutboxFaults()
        opts.faults = faults
        let (db, _) = try OutboxDatabase.openForWriting(opts)
        let level = { try db.db.scalar("PRAGMA synchronous") }
        #expect(try level() == 2)
        try db.append((1...3).map { event(.productionCompleted, $0) })
        #expect(try level() == 2)
        let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 2, maxBytes: 1 << 20)
        try db.settle(sink: "mw", claim: claim, delivered: 2, dead: [])
        #expect(try level() == 1)
        #expect(try OutboxDatabase.openExisting(opts).status().sinks["mw"]?.delivered == 2)

        try db.append([event(.productionCompleted, 4)])
        #expect(try level() == 2)
        faults.fail(.settle, times: 1)
        let next = try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20)
        #expect(throws: SQLiteError.self) { try db.settle(sink: "mw", claim: next, delivered: 3, dead: []) }
        try db.append([event(.productionCompleted, 5)])
        #expect(try level() == 2)

        let other = TemporaryDirectory()
        var normal = options(other)
        normal.sync = .normal
        let (relaxed, _) = try OutboxDatabase.openForWriting(normal)
        try relaxed.append([event()])
        #expect(try relaxed.db.scalar("PRAGMA synchronous") == 1)
        let reopened = try OutboxDatabase.openExisting(opts)
        #expect(
            try reopened.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20).events.first?.sequence == 3)
    }

    /// A batch's bodies are read as one text and each event's is a slice of it: every slice is
    /// that event's stored envelope, no more and no less, in a batch, a top-up and a re-queue.
    @Test func eachClaimedBodyIsItsEventsStoredEnvelope() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        try db.append(
            (1...20).map {
                Event(
                    type: .productionCompleted, subject: "presse-\($0)", time: .init(milliseconds: 0),
                    data: ["note": .string(String(repeating: "é€😀,", count: $0))])
            })
        let stored = try db.db.prepare("SELECT body FROM events WHERE seq = ?1")
        func storedBody(_ sequence: Int64) throws -> String {
            defer { stored.reset() }
            try stored.bind([.int(sequence)])
            _ = try stored.step()
            return stored.text(0)
        }
        let first = try db.claim(sink: "mw", filter: .all, maxEvents: 8, maxBytes: 1 << 20)
        let topUp = try db.claim(
            sink: "mw", filter: .all, maxEvents: 100, maxBytes: 1 << 20, after: first.through,
            holding: OutboxDatabase.batchBytes(first.events))
        try db.settle(sink: "mw", claim: topUp, delivered: topUp.events.count, dead: [])
        let replay = try OutboxDatabase.openExisting(options(dir))
        try replay.db.execute("INSERT INTO requeue(sink, seq) VALUES ('mw', 3), ('mw', 4), ('mw', 9)")
        let requeued = try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: 1 << 20)
        #expect(first.events.count == 8 && topUp.events.count == 13 && requeued.requeued)
        for event in first.events + topUp.events + requeued.events {
            #expect(try String(event.body) == storedBody(event.sequence))
        }
        #expect(
            try first.events.dropFirst().map { try parse($0.body)["subject"] as? String }
                == (1...7).map { "presse-\($0)" })
    }

    /// Bodies whose bytes are not UTF-8 (written by hand, or damaged) come out of a claim as
    /// each would alone: repaired within itself, with its neighbours whole.
    @Test(
        arguments: [
            [Array("{\"a\":\"é€😀\"}".utf8), Array("{}".utf8)],
            [[0x7B, 0xFF, 0x7D], Array("{\"é\"}".utf8)],
            [[0x7B, 0xF0, 0x9F, 0x98], Array("{\"é\"}".utf8), [0x7B, 0x7D]],
            [[0x7B, 0xF0, 0x9F], [0x98, 0x98, 0x7D], Array("{}".utf8)],
            [[0x80, 0x7B, 0x7D], [0x7B, 0xE2, 0x82], [0xAC, 0x7D]],
        ] as [[[UInt8]]])
    func aBodyThatIsNotUTF8IsRepairedAsItWouldBeAlone(bodies: [[UInt8]]) throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        let insert = try db.db.prepare(
            "INSERT INTO events(seq, id, type, class, time_ms, recorded_ms, body) VALUES (?1, 'e', 't', 0, 0, 0, ?2)")
        for (i, body) in bodies.enumerated() {
            try body.withUnsafeBufferPointer {
                try insert.bind(Int64(i + 2), at: 1)
                try insert.bindStatic($0, at: 2)
                _ = try insert.step()
                insert.reset()
            }
        }
        let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: 1 << 20)
        #expect(claim.events.dropFirst().map { String($0.body) } == bodies.map { String(decoding: $0, as: UTF8.self) })
    }

    @Test func batchesStopAtMaxBytesButAlwaysHoldOneEvent() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        try db.append((1...10).map { event(.productionCompleted, $0) })
        let size = try db.claim(sink: "mw", filter: .all, maxEvents: 1, maxBytes: 1 << 20).events[0].body.utf8.count
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: size * 3 + 10).events.count == 3)
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: 10).events.count == 1)
    }

    @Test func deadLettersCanBeListedRetriedAndDropped() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        try db.append((1...3).map { event(.productionCompleted, $0) })
        let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20)
        try db.settle(
            sink: "mw", claim: claim, delivered: 3,
            dead: [DeadLetter(sequence: 3, status: 422, response: "bad quantity")])
        let dead = try db.deadEvents()
        #expect(dead.map(\.sequence) == [3] && dead[0].status == 422 && dead[0].response == "bad quantity")
        #expect(dead[0].id == claim.events[2].id)
        #expect(try db.status().sinks["mw"]?.dead == 1)

        #expect(try db.retryDead(id: dead[0].id) == 1)
        let again = try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20)
        #expect(again.requeued && again.events.map(\.id) == [dead[0].id], "the retried event keeps its id")
        try db.settle(
            sink: "mw", claim: again, delivered: 0, dead: [DeadLetter(sequence: 3, status: 422, response: "still bad")])
        #expect(try db.dropDead(sink: "mw") == 1)
        #expect(try db.deadEvents().isEmpty)
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 10, maxBytes: 1 << 20).events.isEmpty)
    }

    @Test func replayRequeuesDeliveredEventsByEventTime() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir))
        try db.append((0..<10).map { event(.productionCompleted, $0, time: 1_000_000 + Int64($0) * 1000) })
        let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: 1 << 20)
        try db.settle(sink: "mw", claim: claim, delivered: 11, dead: [])
        #expect(
            try db.replay(
                sink: "mw", since: Timestamp(milliseconds: 1_003_000), until: Timestamp(milliseconds: 1_006_000)) == 3)
        let replayed = try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: 1 << 20)
        #expect(replayed.requeued && replayed.events.map(\.time.milliseconds) == [1_003_000, 1_004_000, 1_005_000])
        #expect(throws: OutboxError.self) { try db.replay(sink: "nope", since: Timestamp(milliseconds: 0), until: nil) }
    }

    @Test func retentionPurgesOnlyWhatEverySinkHasHad() throws {
        let dir = TemporaryDirectory()
        var opts = options(dir, sinks: [.init(name: "a", filter: .all), .init(name: "b", filter: .all)])
        opts.retainDelivered = 60_000
        let (db, _) = try OutboxDatabase.openForWriting(opts, now: Timestamp(milliseconds: 0))
        try db.append((1...10).map { event(.productionCompleted, $0) }, now: Timestamp(milliseconds: 0))
        let a = try db.claim(sink: "a", filter: .all, maxEvents: 100, maxBytes: 1 << 20)
        try db.settle(sink: "a", claim: a, delivered: 11, dead: [])
        let b = try db.claim(sink: "b", filter: .all, maxEvents: 5, maxBytes: 1 << 20)
        try db.settle(sink: "b", claim: b, delivered: 5, dead: [])
        #expect(try db.purgeRetained(now: Timestamp(milliseconds: 30_000)) == 0, "still within retain_delivered")
        #expect(try db.purgeRetained(now: Timestamp(milliseconds: 61_000)) == 5, "only what sink b has had too")
        #expect(
            try db.claim(sink: "b", filter: .all, maxEvents: 100, maxBytes: 1 << 20).events.map(\.sequence)
                == Array(6...11))
    }

    @Test func aSinkAddedLaterStartsAfterTheNewestEvent() throws {
        let dir = TemporaryDirectory()
        do {
            let (db, _) = try OutboxDatabase.openForWriting(options(dir))
            try db.append((1...5).map { event(.productionCompleted, $0) })
        }
        let both = options(dir, sinks: [.init(name: "mw", filter: .all), .init(name: "late", filter: .all)])
        let (db, _) = try OutboxDatabase.openForWriting(both)
        #expect(try db.claim(sink: "late", filter: .all, maxEvents: 100, maxBytes: 1 << 20).events.isEmpty)
        #expect(try db.claim(sink: "mw", filter: .all, maxEvents: 100, maxBytes: 1 << 20).events.count == 6)
    }
}
