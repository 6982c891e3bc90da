import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// `max_size` with a sink that is down: low events go first, then normal, never critical.
@Suite struct OutboxQuotaTests {
    func fill(_ db: OutboxDatabase, _ type: EventType, count: Int) throws {
        let padding = String(repeating: "x", count: 900)
        for start in stride(from: 0, to: count, by: 100) {
            try db.append(
                (start..<min(count, start + 100)).map {
                    Event(
                        type: type, subject: "m", time: .now(), data: ["n": .int(Int64($0)), "pad": .string(padding)])
                })
        }
    }

    func count(_ db: OutboxDatabase, _ type: String) throws -> Int {
        try db.claim(sink: "mw", filter: TypeFilter([type]), maxEvents: 1_000_000, maxBytes: .max).events.count
    }

    @Test func dropsLowThenNormalAndSaysSo() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir, maxSize: 2 << 20))
        try fill(db, .productionCompleted, count: 300)
        try fill(db, .tagChanged, count: 1500)
        try fill(db, .stateChanged, count: 1500)
        #expect(try db.sizeInBytes() < 2 << 20 + 600_000, "the outbox stays near max_size")
        #expect(try count(db, "production.completed") == 300, "critical events are never dropped")
        #expect(try count(db, "tag.changed") == 0, "low events go first")
        #expect(try count(db, "machine.state.changed") < 1500)
        let dropped = try db.claim(
            sink: "mw", filter: TypeFilter(["outbox.events.dropped"]), maxEvents: 100, maxBytes: .max
        ).events
        #expect(!dropped.isEmpty)
        let counted = try dropped.map { try parse($0.body)["data"] as! [String: Any] }.reduce(0) {
            $0 + ($1["count"] as! Int)
        }
        let survivors = try count(db, "machine.state.changed")
        let createdDropped = try count(db, "outbox.created") == 0 ? 1 : 0  // the oldest normal event of all
        #expect(
            counted == 1500 + 1500 - survivors + createdDropped,
            "counted \(counted), surviving state events \(survivors)")
        let first = try parse(dropped[0].body)
        #expect(((first["data"] as! [String: Any])["by_type"] as? [String: Int])?["tag.changed"] != nil)
    }

    @Test func refusesAppendsWhenOnlyCriticalEventsAreLeft() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir, maxSize: 1 << 20))
        var full = false
        var appended = 0
        for _ in 0..<100 {
            do {
                try fill(db, .productionCompleted, count: 100)
                appended += 100
            } catch let error as OutboxError where error.code == .full {
                full = true
                break
            }
        }
        #expect(full, "the outbox should refuse once it is full of critical events")
        #expect(
            try count(db, "production.completed") == appended, "nothing critical was dropped and nothing half-appended")
        // The sink comes back and takes everything: appends work again.
        let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 1_000_000, maxBytes: .max)
        try db.settle(sink: "mw", claim: claim, delivered: claim.events.count, dead: [])
        try fill(db, .productionCompleted, count: 100)
    }

    /// The WAL counts as its budget, whatever its file holds (checkpoints run when they run): once
    /// an event is refused, an append that adds no page (a state row) is refused too, also with
    /// the WAL's file emptied.
    @Test func aFullOutboxRefusesEvenAnAppendThatAddsNoPageWhateverItsWALHolds() throws {
        let dir = TemporaryDirectory()
        let opts = options(dir, maxSize: 1 << 20)
        let (db, _) = try OutboxDatabase.openForWriting(opts)
        var refused = false
        for _ in 0..<4000 where !refused {
            do {
                try fill(db, .productionCompleted, count: 1)
            } catch let error as OutboxError where error.code == .full {
                refused = true
            }
        }
        #expect(refused)
        // The writer's checkpointer thread may be copying: SQLite then refuses this checkpoint at
        // once (busy), so it is tried again until the WAL's file is empty.
        let truncating = try SQLiteConnection(path: opts.databasePath)
        let deadline = ContinuousClock.now + .seconds(30)
        while OutboxDatabase.fileSize(opts.databasePath + "-wal") > 0, ContinuousClock.now < deadline {
            try truncating.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        #expect(OutboxDatabase.fileSize(opts.databasePath + "-wal") == 0)
        #expect(throws: OutboxError.self) { try db.append([], state: [("rules.machine.m", "{}")]) }
        #expect(try db.loadState()["rules.machine.m"] == nil)
    }

    /// The drop notice the quota commits before it finds the outbox still full takes a sequence;
    /// the appends after it go on from there: every number from 1 to N is given exactly once.
    @Test func sequencesStayContiguousThroughFullAndDrain() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir, maxSize: 1 << 20))
        let padding = String(repeating: "x", count: 900)
        func batch(_ type: EventType, _ count: Int) -> [Event] {
            (0..<count).map {
                Event(type: type, subject: "m", time: .now(), data: ["n": .int(Int64($0)), "pad": .string(padding)])
            }
        }
        var given: [Int64] = [1]  // outbox.created
        var refusals = 0
        var otherErrors: [String] = []
        func append(_ events: [Event]) {
            do {
                if let range = try db.append(events) { given += Array(range) }
            } catch let error as OutboxError where error.code == .full {
                refusals += 1
            } catch {
                otherErrors.append("\(error)")
            }
        }
        // Critical events until the outbox refuses; the sink takes the oldest few; a few low
        // events fit in the room that made; then critical events again, until the quota drops
        // those low events, commits its notice, and still finds the outbox full.
        while refusals == 0 { append(batch(.productionCompleted, 20)) }
        let claim = try db.claim(sink: "mw", filter: .all, maxEvents: 40, maxBytes: .max)
        try db.settle(sink: "mw", claim: claim, delivered: claim.events.count, dead: [])
        for _ in 0..<4 { append(batch(.tagChanged, 5)) }
        #expect(refusals == 1, "the low events fitted")
        for _ in 0..<20 { append(batch(.productionCompleted, 20)) }
        #expect(refusals > 1)
        for _ in 0..<10 {
            append(batch(.productionCompleted, 5))
            append(batch(.tagChanged, 5))
        }
        #expect(otherErrors.isEmpty, "only .full may refuse an append: \(otherErrors.prefix(3))")
        let notices = try db.claim(
            sink: "mw", filter: TypeFilter(["outbox.events.dropped"]), maxEvents: 1000, maxBytes: .max
        )
        .events.map(\.sequence)
        #expect(!notices.isEmpty, "the quota dropped tag.changed events and said so")
        let all = given + notices
        #expect(all.count == Set(all).count, "a sequence was given twice")
        #expect(all.sorted() == Array(1...Int64(all.count)), "sequences are 1...N without a gap")
        // A new connection (the agent after a restart) continues from the same number.
        let (reopened, _) = try OutboxDatabase.openForWriting(options(dir, maxSize: 1 << 30))
        #expect(try reopened.append([event()]) == Int64(all.count + 1)...Int64(all.count + 1))
    }

    /// An append that fails inside its transaction (a disk error) leaves no number used.
    @Test func aFailedAppendGivesNoSequenceAway() throws {
        let dir = TemporaryDirectory()
        var opts = options(dir)
        let faults = OutboxFaults()
        opts.faults = faults
        let (db, _) = try OutboxDatabase.openForWriting(opts)
        #expect(try db.append([event(), event()]) == 2...3)
        faults.fail(.append, times: 2)
        #expect(throws: SQLiteError.self) { try db.append([event()]) }
        #expect(throws: SQLiteError.self) { try db.append([event(), event()]) }
        #expect(try db.append([event()]) == 4...4)
    }

    /// A commit larger than the room left (a historian chunk) makes room for itself as a whole,
    /// or is refused whole: the data never passes `max_size` by a chunk's size.
    @Test func aLargeCommitMakesRoomForItselfOrIsRefusedWhole() throws {
        let dir = TemporaryDirectory()
        let limit: Int64 = 2 << 20
        let (db, _) = try OutboxDatabase.openForWriting(options(dir, maxSize: limit))
        try fill(db, .tagChanged, count: 1000)
        let padding = String(repeating: "x", count: 900)
        func chunk(_ n: Int) -> [Event] {
            (0..<n).map {
                Event(
                    type: .productionCompleted, subject: "m", time: .now(),
                    data: ["n": .int(Int64($0)), "pad": .string(padding)])
            }
        }
        try db.append(chunk(800))
        let data = try db.dataBytes()
        #expect(data <= limit, "\(data) bytes of data")
        #expect(try count(db, "production.completed") == 800, "taken whole")
        #expect(try count(db, "tag.changed") < 1000, "low events made room for it")

        #expect(throws: OutboxError.self) { try db.append(chunk(2500)) }
        #expect(try count(db, "production.completed") == 800, "a chunk that cannot fit leaves nothing")
        #expect(try db.dataBytes() <= limit)
        let next = try #require(try db.append(chunk(1)))
        #expect(next.lowerBound == (try db.committedSequence()), "the sequence goes on without a gap")
    }
}
