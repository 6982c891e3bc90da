import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent
@testable import EdgeAgentCore

@Suite struct OutboxTimelineTests {
    /// 2026-11-26 10:00:00 UTC.
    let t0: Int64 = 1_795_687_200_000

    func stateChange(_ machine: String, _ ms: Int64, _ state: String, _ previous: String?, _ previousFor: Int64?)
        -> Event
    {
        Event(
            type: .stateChanged, subject: machine, time: Timestamp(milliseconds: ms),
            data: [
                "machine": .string(machine), "state": .string(state),
                "previous_state": previous.map { .string($0) } ?? nil,
                "code": 1, "previous_duration_ms": previousFor.map { .int($0) } ?? nil,
            ])
    }

    @Test func theTimelineReadsTheWindowsStatesDowntimesQualityOrdersAndParts() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try OutboxDatabase.openForWriting(options(dir), now: Timestamp(milliseconds: t0))
        let hour: Int64 = 3_600_000
        func at(_ ms: Int64) -> Timestamp { Timestamp(milliseconds: t0 + ms) }
        // Before the window (13 h ago): out of it. Then a fault with reason 31 and the rest.
        try db.append([stateChange("press-1", t0, "running", nil, nil)], now: at(0))
        let late = 13 * hour
        try db.append(
            [
                stateChange("press-1", t0 + late, "fault", "running", late),
                Event(
                    type: .downtimeStarted, subject: "press-1", time: at(late),
                    data: ["machine": "press-1", "downtime_id": "d1", "state": "fault", "reason_code": 31]),
                Event(
                    type: .qualityRaised, subject: "press-1", time: at(late + 1000),
                    data: ["machine": "press-1", "check": "melt_temp", "severity": "major"]),
                Event(
                    type: .productionCompleted, subject: "press-1", time: at(late + 2000),
                    data: ["machine": "press-1", "quantity": 12.5]),
                Event(
                    type: .productionCompleted, subject: "press-1", time: at(late + 3000),
                    data: ["machine": "press-1", "quantity": 7]),
            ], now: at(late + 3000))
        try db.append(
            [
                stateChange("press-1", t0 + late + 60_000, "running", "fault", 60_000),
                Event(
                    type: .downtimeEnded, subject: "press-1", time: at(late + 60_000),
                    data: [
                        "machine": "press-1", "downtime_id": "d1", "state": "fault", "reason_code": 31,
                        "duration_ms": 60_000,
                    ]),
                Event(
                    type: .workOrderStarted, subject: "press-1", time: at(late + 61_000),
                    data: ["machine": "press-1", "work_order": "WO-2", "previous_work_order": "WO-1"]),
            ], now: at(late + 61_000))
        let reader = try OutboxDatabase.openExisting(options(dir))
        let read = try reader.timeline(now: at(late + 120_000))
        #expect(read.window.from == at(late + 120_000 - 12 * hour), "the last 12 h of the 13 the outbox holds")
        #expect(read.records.count == 6, "the first state change is before the window: \(read.records)")
        let timeline = MachineTimeline(
            machine: "press-1", records: read.records, window: read.window, downtimeStates: ["fault"],
            parts: read.parts["press-1"] ?? [:], bucket: read.bucket)
        #expect(
            timeline.bands.map { TimelineSVG.title($0, clock: .utc) }.suffix(2) == [
                "fault from 23:00:00 to 23:01:00, reason 31", "running from 23:01:00 to 23:02:00 (now)",
            ])
        #expect(timeline.bands.first?.from == read.window.from, "running since before the window: from its start")
        #expect(timeline.marks == [.init(at: at(late + 1000), check: "melt_temp", severity: "major")])
        #expect(timeline.ticks == [.init(at: at(late + 61_000), order: "WO-2")])
        #expect(timeline.buckets.map(\.parts).reduce(0, +) == 19.5)

        let few = try reader.timeline(now: at(late + 120_000), maxRows: 2)
        #expect(few.truncated && few.records.count == 2 && few.window.from == at(late + 60_000))
    }

    /// The page a technician opens on a 20-machine line whose outbox holds 24 hours: production
    /// every 10 s per machine, a state change every few minutes, downtimes, quality and orders.
    /// Its times are printed, not asserted: each read gets a budget no loaded machine reaches, and
    /// the budget itself is checked with one no read meets.
    @Test func aDayOfATwentyMachineLineIsDrawnAndRefreshedFromWhatIsNew() throws {
        let generous = Duration.seconds(300)
        let dir = TemporaryDirectory()
        let start = t0
        let (db, _) = try OutboxDatabase.openForWriting(options(dir), now: Timestamp(milliseconds: start))
        let machines = (1...20).map { "press-\($0)" }
        let cycle: [(state: String, seconds: Int64)] = [
            ("running", 1500), ("stopped", 120), ("running", 900), ("fault", 480), ("setup", 300), ("idle", 300),
        ]
        var state = machines.map { _ in (phase: 0, since: start, left: Int64(0)) }
        for (i, _) in machines.enumerated() { state[i].left = Int64(i) * 37 + 60 }
        var appended = 0
        for minute in 0..<(24 * 60) {
            var events: [Event] = []
            for second in stride(from: Int64(0), to: 60, by: 10) {
                let now = start + Int64(minute) * 60_000 + second * 1000
                for (i, machine) in machines.enumerated() {
                    state[i].left -= 10
                    if state[i].left <= 0 {
                        let previous = cycle[state[i].phase]
                        state[i].phase = (state[i].phase + 1) % cycle.count
                        let next = cycle[state[i].phase]
                        state[i].left = next.seconds
                        events.append(stateChange(machine, now, next.state, previous.state, now - state[i].since))
                        if next.state == "fault" || next.state == "stopped" {
                            events.append(
                                Event(
                                    type: .downtimeStarted, subject: machine, time: Timestamp(milliseconds: now),
                                    data: [
                                        "machine": .string(machine), "state": .string(next.state), "reason_code": 31,
                                    ]))
                        }
                        if previous.state == "fault" || previous.state == "stopped" {
                            events.append(
                                Event(
                                    type: .downtimeEnded, subject: machine, time: Timestamp(milliseconds: now),
                                    data: [
                                        "machine": .string(machine), "state": .string(previous.state),
                                        "reason_code": 31, "duration_ms": .int(now - state[i].since),
                                    ]))
                        }
                        if next.state == "setup" {
                            events.append(
                                Event(
                                    type: .workOrderStarted, subject: machine, time: Timestamp(milliseconds: now),
                                    data: ["machine": .string(machine), "work_order": .string("WO-\(minute)-\(i)")]))
                            events.append(
                                Event(
                                    type: .qualityRaised, subject: machine, time: Timestamp(milliseconds: now),
                                    data: ["machine": .string(machine), "check": "melt_temp", "severity": "major"]))
                        }
                        state[i].since = now
                    }
                    if cycle[state[i].phase].state == "running" {
                        events.append(
                            Event(
                                type: .productionCompleted, subject: machine, time: Timestamp(milliseconds: now),
                                data: [
                                    "machine": .string(machine), "quantity": 4, "unit": "pcs",
                                    "counter": ["tag": "count", "from": 1, "to": 5], "work_order": "WO-1",
                                ]))
                    }
                }
            }
            appended += events.count
            try db.append(events, now: Timestamp(milliseconds: start + Int64(minute + 1) * 60_000))
        }
        let now = Timestamp(milliseconds: start + 24 * 3_600_000)
        let reader = try OutboxDatabase.openExisting(options(dir))
        var snapshot = StatusSnapshot(
            agent: "line-20", source: "/sites/s/lines/l/agents/line-20", now: now, ready: true, reasons: [], notes: [],
            outboxBytes: nil, outboxMaxSize: 1 << 30, outboxCreated: nil, quarantinedTo: nil, devices: [],
            machines: machines.map { ($0, AgentHealth.Machine()) }, counting: .init(day: "2026-11-27", since: now),
            sinks: [], warnings: [],
            downtimeStates: Dictionary(uniqueKeysWithValues: machines.map { ($0, ["stopped", "fault"]) }),
            clock: .utc)
        // The page's first read (a new start), then its refreshes: each reads only what is new.
        var cache = TimelineCache()
        var times: [Duration] = []
        var html = ""
        for _ in 0..<6 {
            let clock = ContinuousClock()
            let began = clock.now
            snapshot.timeline = try reader.timeline(now: now, budget: generous, cache: &cache)
            html = StatusPage.html(snapshot)
            times.append(clock.now - began)
        }
        let page = html.utf8.count
        let bands = html.components(separatedBy: "class=\"band ").count - 1
        print(
            "timeline page, 20 machines, 24 h outbox (\(appended) events), 12 h window: server time first "
                + "\(times[0]), refreshes \(times.dropFirst().map { "\($0)" }.joined(separator: ", ")); "
                + "page \(page) bytes, \(bands) bands")
        var fresh = snapshot
        fresh.timeline = try reader.timeline(now: now, budget: generous)
        #expect(StatusPage.html(fresh) == html, "the refreshes draw what a fresh read draws")

        // A read past its budget is interrupted and leaves what was read before as it was.
        var interrupted = TimelineCache()
        #expect(throws: SQLiteError.self) {
            try reader.timeline(now: now, budget: .milliseconds(1), cache: &interrupted)
        }
        #expect(interrupted.through == 0 && interrupted.parts.isEmpty)
        fresh.timeline = try reader.timeline(now: now, budget: generous, cache: &interrupted)
        #expect(StatusPage.html(fresh) == html)

        // The whole day drawn at once (a window the page does not use): the read is the bound.
        var day = snapshot
        let clock = ContinuousClock()
        let began = clock.now
        day.timeline = try reader.timeline(now: now, span: 24 * 3_600_000, budget: generous)
        let dayPage = StatusPage.html(day)
        print("the same with a 24 h window, read afresh: \(clock.now - began), page \(dayPage.utf8.count) bytes")
        #expect(day.timeline?.truncated == false && dayPage.utf8.count > page)
        #expect(snapshot.timeline?.truncated == false)
        #expect(bands > 20 * 60, "every machine's 12 h of states is drawn")
        #expect(page < 4 << 20)
    }
}
