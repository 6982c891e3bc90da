import Testing

@testable import EdgeAgentCore

@Suite struct MachineTimelineTests {
    /// 2026-11-26 10:00:00 UTC.
    let t0 = Timestamp(milliseconds: 1_795_687_200_000)
    func at(_ seconds: Int64) -> Timestamp { t0.adding(milliseconds: seconds * 1000) }
    var window: TimelineWindow { TimelineWindow(from: at(0), to: at(3600)) }

    @Test func bandsFollowTheStateChangesAndADowntimeBandCarriesItsReason() {
        let records: [TimelineRecord] = [
            .state(machine: "press-1", at: at(600), state: "running", previous: "idle", previousFor: 1_200_000),
            .state(machine: "press-1", at: at(1200), state: "fault", previous: "running", previousFor: 600_000),
            .downtime(machine: "press-1", from: at(1200), to: nil, reason: 31),
            .state(machine: "press-1", at: at(1500), state: "running", previous: "fault", previousFor: 300_000),
            .downtime(machine: "press-1", from: at(1200), to: at(1500), reason: 0),  // read when it ended
            .state(machine: "press-2", at: at(100), state: "stopped", previous: nil, previousFor: nil),
        ]
        let timeline = MachineTimeline(
            machine: "press-1", records: records, window: window, downtimeStates: ["stopped", "fault"])
        #expect(
            timeline.bands.map { TimelineSVG.title($0, clock: .utc) } == [
                "idle from 10:00:00 to 10:10:00",  // the state before the window's first change, cut at its start
                "running from 10:10:00 to 10:20:00",
                "fault from 10:20:00 to 10:25:00, reason 31",
                "running from 10:25:00 to 11:00:00 (now)",
            ])
        #expect(timeline.bands.map(\.kind) == [.idle, .running, .downtime, .running])
    }

    @Test func aStopShorterThanMinDowntimeIsADowntimeStateWithoutAReason() {
        let records: [TimelineRecord] = [
            .state(machine: "m", at: at(10), state: "running", previous: nil, previousFor: nil),
            .state(machine: "m", at: at(20), state: "stopped", previous: "running", previousFor: 10_000),
            .state(machine: "m", at: at(23), state: "running", previous: "stopped", previousFor: 3_000),
        ]
        let timeline = MachineTimeline(machine: "m", records: records, window: window, downtimeStates: ["stopped"])
        #expect(
            timeline.bands[1]
                == .init(state: "stopped", kind: .downtime, from: at(20), to: at(23), reason: nil, open: false))
        #expect(timeline.bands.first?.from == at(10), "nothing is drawn before the very first reading")
    }

    @Test func aMachineWithoutChangesInTheWindowShowsItsCurrentState() {
        let timeline = MachineTimeline(
            machine: "m", records: [], window: window, downtimeStates: [], current: ("idle", at(-5000)))
        #expect(
            timeline.bands == [.init(state: "idle", kind: .idle, from: at(0), to: at(3600), reason: nil, open: true)])
    }

    @Test func partsPerHourAreRatesOverEachBucketUpToNow() {
        let window = TimelineWindow(from: at(1800), to: at(3 * 3600 + 900))
        let hour: Int64 = 3_600_000
        let parts: [Int64: Double] = [
            t0.milliseconds: 300, t0.milliseconds + hour: 1200, t0.milliseconds + 3 * hour: 100,
        ]
        let timeline = MachineTimeline(
            machine: "m", records: [], window: window, downtimeStates: [], parts: parts, bucket: hour)
        #expect(timeline.buckets.map(\.perHour) == [300, 1200, 0, 400], "whole hours, then a quarter up to now")
        #expect(timeline.buckets.first?.milliseconds == 1_800_000, "the first is drawn from the window's start")
    }

    @Test func marksAndTicksNameTheCheckAndTheOrderInTheSVG() {
        let records: [TimelineRecord] = [
            .state(machine: "m", at: at(0), state: "running", previous: nil, previousFor: nil),
            .quality(machine: "m", at: at(900), check: "melt_temp", severity: "major"),
            .workOrder(machine: "m", at: at(1800), order: "WO-<2>"),
        ]
        let timeline = MachineTimeline(machine: "m", records: records, window: window, downtimeStates: [])
        let svg = TimelineSVG.machine(timeline, window: window, clock: .utc, partsScale: 0)
        #expect(svg.contains("<title>quality melt_temp (major) from 10:15:00</title>"))
        #expect(svg.contains("<title>work order WO-&lt;2&gt; from 10:30:00</title>"))
        #expect(svg.contains("<title>running from 10:00:00 to 11:00:00 (now)</title>"))
        #expect(!svg.contains("<script") && !svg.contains("href"))
    }

    @Test func localTimeIsThePCsZone() {
        let berlin = LocalClock(zone: "Europe/Berlin") { _ in 3600 }
        #expect(berlin.time(at(59)) == "11:00:59" && berlin.time(at(59), seconds: false) == "11:00")
    }

    @Test func theBacklogChartMarksTheOutageAndCountsDeliveriesPerMinute() {
        var history = BacklogHistory()
        let start = Timestamp(milliseconds: t0.milliseconds)
        for i in 0..<60 {
            let failing = (10..<30).contains(i)
            let pending: Int64 = failing ? Int64(i - 9) * 10 : 0
            history.add(
                .init(
                    at: start.adding(milliseconds: Int64(i) * 2000), pending: pending, delivered: Int64(i) * 5,
                    failing: failing))
        }
        #expect(
            history.outages == [
                .init(from: start.adding(milliseconds: 20_000), to: start.adding(milliseconds: 60_000), open: false)
            ])
        #expect(history.peak == 200)
        #expect(history.deliveredPerMinute.map(\.count) == [145, 150])
        let svg = TimelineSVG.backlog(history, sink: "mw", now: start.adding(milliseconds: 120_000), clock: .utc)
        #expect(svg.contains("<title>mw failing from 10:00:20 to 10:01:00</title>"))
        #expect(svg.contains("data-peak=\"200\""))
    }

    @Test func theBacklogKeepsOneHour() {
        var history = BacklogHistory()
        for i in 0..<2000 {
            history.add(.init(at: t0.adding(milliseconds: Int64(i) * 2000), pending: 0, delivered: 0, failing: false))
        }
        #expect(history.samples.count == 1801)
    }

    /// The wall clock set back a year: the history starts again instead of keeping every sample.
    @Test func theBacklogStartsAgainWhenTheClockIsSetBack() {
        var history = BacklogHistory()
        for i in 0..<100 {
            history.add(.init(at: t0.adding(milliseconds: Int64(i) * 2000), pending: 1, delivered: 0, failing: false))
        }
        let back = t0.adding(milliseconds: -365 * 86_400_000)
        for i in 0..<10 {
            history.add(.init(at: back.adding(milliseconds: Int64(i) * 2000), pending: 2, delivered: 0, failing: false))
        }
        #expect(history.samples.count == 10 && history.samples.allSatisfy { $0.pending == 2 })
    }

    /// A counter's garbage (a rate past Int64) draws clamped; it never traps.
    @Test func anAbsurdRateIsDrawnClamped() {
        #expect(TimelineSVG.number(9.3e18) == "1000000000000000")
        #expect(TimelineSVG.f(.infinity) == "0" && TimelineSVG.f(-2.5) == "-2.5")
    }
}
