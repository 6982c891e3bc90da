/// A retained event as the technician's timeline reads it: the few fields of SPEC 4's data
/// that it draws.
public enum TimelineRecord: Sendable, Equatable {
    /// `machine.state.changed`; `previous` and `previousFor` (ms) tell the state before it.
    case state(machine: String, at: Timestamp, state: String, previous: String?, previousFor: Int64?)
    /// `machine.downtime.started` (no end yet) or `.ended`.
    case downtime(machine: String, from: Timestamp, to: Timestamp?, reason: Int64?)
    /// `quality.exception.raised`.
    case quality(machine: String, at: Timestamp, check: String, severity: String)
    /// `work_order.started`.
    case workOrder(machine: String, at: Timestamp, order: String)

    public var machine: String {
        switch self {
        case let .state(machine, _, _, _, _), let .downtime(machine, _, _, _), let .quality(machine, _, _, _),
            let .workOrder(machine, _, _):
            machine
        }
    }
}

/// The span of time the page draws: up to the last 12 hours, less when the outbox holds less.
public struct TimelineWindow: Sendable, Equatable {
    public var from: Timestamp
    public var to: Timestamp

    public init(from: Timestamp, to: Timestamp) {
        self.from = from
        self.to = max(to, from.adding(milliseconds: 1))
    }

    public var milliseconds: Int64 { to.milliseconds - from.milliseconds }

    /// A round step (1 s to 2 h) that cuts the window into at most `count` parts: the axis'
    /// ticks and the parts-per-hour buckets.
    public func step(atMost count: Int64) -> Int64 {
        let steps: [Int64] = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200].map { $0 * 1000 }
        return steps.first { milliseconds / $0 < count } ?? 7200 * 1000
    }
}

/// One machine's past hours, as bands of states, quality marks, work-order ticks and parts per
/// hour. Pure: built from records, drawn by `TimelineSVG`.
public struct MachineTimeline: Sendable, Equatable {
    /// What a state is, for its colour: the page's legend names each class.
    public enum StateClass: String, Sendable, Equatable, CaseIterable {
        case running, idle, downtime
    }

    public struct Band: Sendable, Equatable {
        public var state: String
        public var kind: StateClass
        public var from: Timestamp
        public var to: Timestamp
        /// The downtime's reason code, for a band inside an announced downtime.
        public var reason: Int64?
        /// The band still runs: it ends now.
        public var open: Bool
    }

    public struct Mark: Sendable, Equatable {
        public var at: Timestamp
        public var check: String
        public var severity: String
    }

    public struct Tick: Sendable, Equatable {
        public var at: Timestamp
        public var order: String
    }

    /// Good parts in one bucket, drawn from `from` for `milliseconds` (the part in the window),
    /// and the rate they make per hour over the time the bucket had (`counted` ms, up to now).
    public struct Bucket: Sendable, Equatable {
        public var from: Timestamp
        public var milliseconds: Int64
        public var counted: Int64
        public var parts: Double
        public var perHour: Double { parts * 3_600_000 / Double(max(1, counted)) }
    }

    public var machine: String
    public var bands: [Band] = []
    public var marks: [Mark] = []
    public var ticks: [Tick] = []
    public var buckets: [Bucket] = []

    /// `records` are this machine's, oldest first; `parts` are good parts by bucket start
    /// (`bucket` ms wide, whole buckets, the first one too); `current` is the state the agent holds now, drawn when the window
    /// has no change of state.
    public init(
        machine: String, records: [TimelineRecord], window: TimelineWindow, downtimeStates: Set<String>,
        current: (state: String, since: Timestamp)? = nil, parts: [Int64: Double] = [:], bucket: Int64 = 3_600_000
    ) {
        self.machine = machine
        func kind(_ state: String) -> StateClass {
            downtimeStates.contains(state) ? .downtime : state == "running" ? .running : .idle
        }
        var downtimes: [(from: Timestamp, to: Timestamp?, reason: Int64?)] = []
        var changes: [(at: Timestamp, state: String, previous: String?, previousFor: Int64?)] = []
        for record in records where record.machine == machine {
            switch record {
            case let .state(_, at, state, previous, previousFor):
                changes.append((at, state, previous, previousFor))
            case let .downtime(_, from, to, reason):
                // `ended` after `started` for the same downtime ends it; the reason stays the one
                // read when it started (`ended` carries the one read when it ended).
                if let last = downtimes.indices.last, downtimes[last].from == from {
                    downtimes[last] = (from, to ?? downtimes[last].to, downtimes[last].reason ?? reason)
                } else {
                    downtimes.append((from, to, reason))
                }
            case let .quality(_, at, check, severity):
                if at >= window.from { marks.append(Mark(at: at, check: check, severity: severity)) }
            case let .workOrder(_, at, order):
                if at >= window.from { ticks.append(Tick(at: at, order: order)) }
            }
        }
        func reason(at time: Timestamp) -> Int64? {
            downtimes.last { $0.from <= time && ($0.to.map { time < $0 } ?? true) }?.reason
        }
        func band(_ state: String, _ from: Timestamp, _ to: Timestamp, open: Bool = false) {
            let from = max(from, window.from)
            guard to > from else { return }
            let kind = kind(state)
            bands.append(
                Band(
                    state: state, kind: kind, from: from, to: min(to, window.to),
                    reason: kind == .downtime ? reason(at: from) : nil, open: open))
        }
        if let first = changes.first {
            if let previous = first.previous, let duration = first.previousFor {
                band(previous, first.at.adding(milliseconds: -duration), first.at)
            }
            for (change, next) in zip(changes, changes.dropFirst()) { band(change.state, change.at, next.at) }
            band(changes[changes.count - 1].state, changes[changes.count - 1].at, window.to, open: true)
        } else if let current {
            band(current.state, current.since, window.to, open: true)
        }
        // Buckets start on multiples of `bucket`: the first is drawn from the window's start,
        // the last counts up to now.
        var start = window.from.milliseconds / bucket * bucket
        while start < window.to.milliseconds {
            let from = max(start, window.from.milliseconds)
            let to = min(start + bucket, window.to.milliseconds)
            buckets.append(
                Bucket(
                    from: Timestamp(milliseconds: from), milliseconds: to - from, counted: to - start,
                    parts: parts[start] ?? 0))
            start += bucket
        }
    }
}
