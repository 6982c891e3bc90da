import Clocks
import EdgeAgentCore
import Testing

/// The poller's policy fed the events its driver feeds it: inputs in order, the actions each
/// one returns. Times are milliseconds on a test clock; a sample's time is the read's start.
@Suite struct DevicePollerStateMachineTests {
    typealias Machine = DevicePollerStateMachine<TestClock<Duration>.Instant>
    typealias Action = Machine.Action

    enum Input {
        case start(at: Int64)
        case tick(at: Int64)
        /// A read that began at `began` (the samples' time) and ended at `at`.
        case read(Machine.Reading, began: Int64, at: Int64)
        case stop
    }

    static func at(_ ms: Int64) -> TestClock<Duration>.Instant { .init(offset: .milliseconds(ms)) }
    static func time(_ ms: Int64) -> Timestamp { Timestamp(milliseconds: 1_000_000 + ms) }

    static let device: DeviceConfig = {
        var device = DeviceConfig(name: "press", transport: .tcp(host: "127.0.0.1", port: 502))
        device.pollInterval = .milliseconds(100)
        device.tags = [
            TagConfig(name: "a", area: .holding, address: 0, type: .uint16),
            TagConfig(name: "b", area: .holding, address: 1, type: .uint16),
        ]
        return device
    }()
    static let plan = ReadPlan(tags: device.tags, maxGap: device.maxGap, maxRegistersPerRead: 125)

    static let answered = Machine.Reading(values: [(0, .uint(7)), (1, .uint(8))], requests: .init(ok: 1))
    static let timedOut = Machine.Reading(requests: .init(timeout: 1), failure: "timeout")

    static func samples(_ values: [String: TagValue?], at ms: Int64) -> [Sample] {
        values.sorted { $0.key < $1.key }.map { Sample(tag: "press.\($0.key)", value: $0.value, time: time(ms)) }
    }

    static func connection(_ connected: Bool, error: String? = nil, at ms: Int64) -> Event {
        Event(
            type: .deviceConnectionChanged, subject: "press", time: time(ms),
            data: ["device": "press", "connected": .bool(connected), "error": error.map { .string($0) } ?? .null])
    }

    /// Feeds `table` to `machine`, expecting each input's actions.
    static func check(
        _ machine: inout Machine, _ table: [(Input, [Action])], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for (step, (input, expected)) in table.enumerated() {
            let actions: [Action]
            switch input {
            case let .start(ms): actions = machine.start(at: at(ms))
            case let .tick(ms): actions = machine.tick(at: at(ms))
            case let .read(reading, began, ms): actions = machine.read(reading, at: at(ms), time: time(began))
            case .stop:
                machine.stop()
                actions = []
            }
            #expect(actions == expected, "step \(step): \(input)", sourceLocation: sourceLocation)
        }
    }

    @Test func aDeviceThatAnswersIsReadEveryIntervalAndItsFirstAnswerReported() {
        var machine = Machine(device: Self.device)
        Self.check(
            &machine,
            [
                (.start(at: 0), [.read(Self.plan)]),
                (
                    .read(Self.answered, began: 0, at: 30),
                    [
                        .count(.init(ok: 1), duration: .milliseconds(30)),
                        .reportHealth(time: Self.time(0), error: nil),
                        .publish(
                            samples: Self.samples(["a": .uint(7), "b": .uint(8)], at: 0),
                            events: [Self.connection(true, at: 0)]),
                        .sleep(until: Self.at(100)),
                    ]
                ),
                (.tick(at: 100), [.read(Self.plan)]),
                (
                    .read(Self.answered, began: 100, at: 120),
                    [
                        .count(.init(ok: 1), duration: .milliseconds(20)),
                        .reportHealth(time: Self.time(100), error: nil),
                        .publish(samples: Self.samples(["a": .uint(7), "b": .uint(8)], at: 100), events: []),
                        .sleep(until: Self.at(200)),
                    ]
                ),
            ])
    }

    @Test func aCycleThatOverranItsDeadlineSkipsTheMissedOnesInsteadOfQueueingThem() {
        var machine = Machine(device: Self.device)
        _ = machine.start(at: Self.at(0))
        #expect(machine.read(Self.answered, at: Self.at(350), time: Self.time(0)).last == .sleep(until: Self.at(450)))
        _ = machine.tick(at: Self.at(450))
        #expect(
            machine.read(Self.answered, at: Self.at(530), time: Self.time(450)).last == .sleep(until: Self.at(550)),
            "a cycle within its interval keeps the cadence")
    }

    @Test func anUnreachableDeviceIsReportedOnceAndBackedOffDoublingUpToTheMaximum() {
        var machine = Machine(device: Self.device, maxBackoff: .milliseconds(300))
        Self.check(
            &machine,
            [
                (.start(at: 0), [.read(Self.plan)]),
                (
                    .read(Self.timedOut, began: 0, at: 300),
                    [
                        .count(.init(timeout: 1), duration: .milliseconds(300)),
                        .log(.unreachable(error: "timeout")),
                        .reportHealth(time: Self.time(0), error: "timeout"),
                        .publish(
                            samples: Self.samples(["a": nil, "b": nil], at: 0),
                            events: [Self.connection(false, error: "timeout", at: 0)]),
                        .sleep(until: Self.at(400)),
                    ]
                ),
                (.tick(at: 400), [.read(Self.plan)]),
                (
                    .read(Self.timedOut, began: 400, at: 700),
                    [
                        .count(.init(timeout: 1), duration: .milliseconds(300)),
                        .reportHealth(time: Self.time(400), error: "timeout"),
                        .sleep(until: Self.at(900)),
                    ]
                ),
                (.tick(at: 900), [.read(Self.plan)]),
                (
                    .read(Self.timedOut, began: 900, at: 1200),
                    [
                        .count(.init(timeout: 1), duration: .milliseconds(300)),
                        .reportHealth(time: Self.time(900), error: "timeout"),
                        .sleep(until: Self.at(1500)),
                    ]
                ),
            ])
    }

    @Test func aDeviceAnsweringAgainIsReportedAndReadAtItsIntervalAgain() {
        var machine = Machine(device: Self.device)
        Self.check(
            &machine,
            [
                (.start(at: 0), [.read(Self.plan)]),
                (
                    .read(Self.timedOut, began: 0, at: 10),
                    [
                        .count(.init(timeout: 1), duration: .milliseconds(10)),
                        .log(.unreachable(error: "timeout")),
                        .reportHealth(time: Self.time(0), error: "timeout"),
                        .publish(
                            samples: Self.samples(["a": nil, "b": nil], at: 0),
                            events: [Self.connection(false, error: "timeout", at: 0)]),
                        .sleep(until: Self.at(110)),
                    ]
                ),
                (.tick(at: 110), [.read(Self.plan)]),
                (
                    .read(Self.answered, began: 110, at: 115),
                    [
                        .count(.init(ok: 1), duration: .milliseconds(5)),
                        .log(.reachable),
                        .reportHealth(time: Self.time(110), error: nil),
                        .publish(
                            samples: Self.samples(["a": .uint(7), "b": .uint(8)], at: 110),
                            events: [Self.connection(true, at: 110)]),
                        .sleep(until: Self.at(210)),
                    ]
                ),
                (.tick(at: 210), [.read(Self.plan)]),
                (
                    .read(Self.timedOut, began: 210, at: 220),
                    [
                        .count(.init(timeout: 1), duration: .milliseconds(10)),
                        .log(.unreachable(error: "timeout")),
                        .reportHealth(time: Self.time(210), error: "timeout"),
                        .publish(
                            samples: Self.samples(["a": nil, "b": nil], at: 210),
                            events: [Self.connection(false, error: "timeout", at: 210)]),
                        .sleep(until: Self.at(320)),
                    ]
                ),
            ])
    }

    @Test func whatAnUnreachableDeviceAnsweredBeforeItBrokeIsPublished() {
        var machine = Machine(device: Self.device)
        _ = machine.start(at: Self.at(0))
        _ = machine.read(Self.timedOut, at: Self.at(10), time: Self.time(0))
        _ = machine.tick(at: Self.at(110))
        let partial = Machine.Reading(values: [(0, .uint(7))], requests: .init(ok: 1, error: 1), failure: "reset")
        #expect(
            machine.read(partial, at: Self.at(120), time: Self.time(110)) == [
                .count(.init(ok: 1, error: 1), duration: .milliseconds(10)),
                .reportHealth(time: Self.time(110), error: "reset"),
                .publish(samples: Self.samples(["a": .uint(7)], at: 110), events: []),
                .sleep(until: Self.at(320)),
            ])
    }

    @Test func aRequestAnsweringWithAnExceptionIsReadTagByTagFromThenOn() {
        var machine = Machine(device: Self.device)
        let request = Self.plan.requests[0]
        let isolated = Self.plan.isolating(request, tags: Self.device.tags)
        #expect(isolated.requests.count == 2)
        Self.check(
            &machine,
            [
                (.start(at: 0), [.read(Self.plan)]),
                (
                    .read(
                        Machine.Reading(
                            values: [(0, nil), (1, .uint(8))], isolated: [request],
                            requests: .init(ok: 1, exception: 2)),
                        began: 0, at: 10),
                    [
                        .count(.init(ok: 1, exception: 2), duration: .milliseconds(10)),
                        .log(.isolated(request)),
                        .reportHealth(time: Self.time(0), error: nil),
                        .publish(
                            samples: Self.samples(["a": nil, "b": .uint(8)], at: 0),
                            events: [Self.connection(true, at: 0)]),
                        .sleep(until: Self.at(100)),
                    ]
                ),
                (.tick(at: 100), [.read(isolated)]),
            ])
    }

    @Test func onlyTheTagsARuleReadsArePublished() {
        var machine = Machine(device: Self.device, ruleTags: ["press.b"])
        Self.check(
            &machine,
            [
                (.start(at: 0), [.read(Self.plan)]),
                (
                    .read(Self.answered, began: 0, at: 10),
                    [
                        .count(.init(ok: 1), duration: .milliseconds(10)),
                        .reportHealth(time: Self.time(0), error: nil),
                        .publish(
                            samples: Self.samples(["b": .uint(8)], at: 0), events: [Self.connection(true, at: 0)]),
                        .sleep(until: Self.at(100)),
                    ]
                ),
                (.tick(at: 100), [.read(Self.plan)]),
                (
                    .read(Self.timedOut, began: 100, at: 110),
                    [
                        .count(.init(timeout: 1), duration: .milliseconds(10)),
                        .log(.unreachable(error: "timeout")),
                        .reportHealth(time: Self.time(100), error: "timeout"),
                        .publish(
                            samples: Self.samples(["b": nil], at: 100),
                            events: [Self.connection(false, error: "timeout", at: 100)]),
                        .sleep(until: Self.at(210)),
                    ]
                ),
            ])
    }

    @Test func aStoppedPollerReportsTheReadingInHandAndReadsNoMore() {
        var machine = Machine(device: Self.device)
        Self.check(
            &machine,
            [
                (.start(at: 0), [.read(Self.plan)]),
                (.stop, []),
                (
                    .read(Self.answered, began: 0, at: 10),
                    [
                        .count(.init(ok: 1), duration: .milliseconds(10)),
                        .reportHealth(time: Self.time(0), error: nil),
                        .publish(
                            samples: Self.samples(["a": .uint(7), "b": .uint(8)], at: 0),
                            events: [Self.connection(true, at: 0)]),
                    ]
                ),
                (.tick(at: 100), []),
            ])
    }

    /// The table in the machine's doc comment.
    @Test func theBackoffDoublesFromOneIntervalToTheMaximum() {
        var device = Self.device
        device.pollInterval = .milliseconds(250)
        let machine = Machine(device: device, maxBackoff: .seconds(10))
        #expect(
            (1...8).map { machine.backoff(failures: $0) }
                == [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000].map { .milliseconds($0) })
        #expect(machine.backoff(failures: 1000) == .seconds(10), "no overflow after a long outage")
    }
}
