import EdgeAgent

/// The demo's course, pure: once a second the demo tells what it saw, `next` says what to do.
///
/// | when | then | phase |
/// |---|---|---|
/// | the outage begins (a third into `duration`, or at 10 s) | stop the receiver | `receiver DOWN (outage)`; the backlog peak is tracked |
/// | the outage is over | start the receiver | `receiver back: draining` |
/// | draining, and no pending event has waited a second | | `running (drained)` |
/// | `duration` has passed | stop the line (every machine idle) | `line stopped: draining` |
/// | line stopped: the receiver up, nothing pending, nothing new, three times in a row; or 30 s later | finish | |
///
/// Three quiet checks, not one: the stop's own events and the last `min_interval` sums come in
/// the seconds after the line stops.
struct DemoCourse {
    enum Action: Equatable { case stopReceiver, startReceiver, stopLine, finish }

    enum Phase: String {
        case running
        case outage = "receiver DOWN (outage)"
        case draining = "receiver back: draining"
        case drained = "running (drained)"
        case stopping = "line stopped: draining"
    }

    /// What the demo saw this second.
    struct Seen {
        var elapsed: Duration
        /// The largest backlog over the sinks.
        var pending: Int64
        /// Seconds the oldest pending event has waited.
        var oldestWait: Double
        /// Events appended since the last check.
        var newEvents: Int64
    }

    let duration: Duration?
    let outage: Range<Duration>?
    private(set) var phase = Phase.running
    private(set) var receiverUp = true
    /// When the line was stopped (time since the start).
    private(set) var lineStopped: Duration?
    private(set) var backlogPeak: Int64 = 0
    private var quiet = 0

    init(duration: Duration?, outage: Duration?) {
        self.duration = duration
        let start = duration.map { $0 / 3 } ?? .seconds(10)
        self.outage = outage.map { start..<(start + $0) }
    }

    mutating func next(_ seen: Seen) -> [Action] {
        var actions: [Action] = []
        if let outage {
            if receiverUp, outage.contains(seen.elapsed) {
                receiverUp = false
                phase = .outage
                actions.append(.stopReceiver)
            } else if !receiverUp, seen.elapsed >= outage.upperBound {
                receiverUp = true
                phase = lineStopped == nil ? .draining : .stopping
                actions.append(.startReceiver)
            }
        }
        if !receiverUp { backlogPeak = max(backlogPeak, seen.pending) }
        if phase == .draining, seen.oldestWait < 1 { phase = .drained }
        guard let duration, seen.elapsed >= duration else { return actions }
        if lineStopped == nil {
            lineStopped = seen.elapsed
            phase = .stopping
            actions.append(.stopLine)
        }
        quiet = seen.pending == 0 && receiverUp && seen.newEvents == 0 ? quiet + 1 : 0
        if quiet >= 3 || seen.elapsed > lineStopped! + .seconds(30) { actions.append(.finish) }
        return actions
    }
}
