/// A sink's last hour, sampled every few seconds in memory: its backlog, what it delivered and
/// whether it was failing. The status page draws it; nothing is stored.
public struct BacklogHistory: Sendable, Equatable {
    public struct Sample: Sendable, Equatable {
        public var at: Timestamp
        public var pending: Int64
        /// The sink's delivered count so far (it only grows while the agent runs).
        public var delivered: Int64
        /// The sink could not deliver at that moment (retrying, refused, or its outbox failing).
        public var failing: Bool

        public init(at: Timestamp, pending: Int64, delivered: Int64, failing: Bool) {
            self.at = at
            self.pending = pending
            self.delivered = delivered
            self.failing = failing
        }
    }

    /// A run of failing samples: from the first to the first sample after it (or the last one).
    public struct Outage: Sendable, Equatable {
        public var from: Timestamp
        public var to: Timestamp
        public var open: Bool
    }

    public private(set) var samples: [Sample] = []
    /// How far back it keeps (ms).
    public let span: Int64

    public init(span: Int64 = 3_600_000) { self.span = span }

    /// A sample older than the last one (the wall clock was set back) starts the history again:
    /// trimming by age would keep the ones "from the future" for ever.
    public mutating func add(_ sample: Sample) {
        if let last = samples.last, sample.at.milliseconds < last.at.milliseconds { samples.removeAll() }
        samples.append(sample)
        let oldest = sample.at.milliseconds - span
        if let first = samples.firstIndex(where: { $0.at.milliseconds >= oldest }), first > 0 {
            samples.removeFirst(first)
        }
    }

    public var peak: Int64 { samples.map(\.pending).max() ?? 0 }

    public var outages: [Outage] {
        var result: [Outage] = []
        var start: Timestamp?
        for sample in samples {
            if sample.failing, start == nil { start = sample.at }
            if !sample.failing, let from = start {
                result.append(Outage(from: from, to: sample.at, open: false))
                start = nil
            }
        }
        if let from = start, let last = samples.last { result.append(Outage(from: from, to: last.at, open: true)) }
        return result
    }

    /// Events delivered in each minute that has samples (by the clock's minutes), oldest first.
    public var deliveredPerMinute: [(minute: Timestamp, count: Int64)] {
        var result: [(minute: Timestamp, count: Int64)] = []
        for (previous, sample) in zip(samples, samples.dropFirst()) {
            let minute = sample.at.milliseconds / 60_000 * 60_000
            let count = max(0, sample.delivered - previous.delivered)
            if result.last?.minute.milliseconds == minute {
                result[result.count - 1].count += count
            } else {
                result.append((Timestamp(milliseconds: minute), count))
            }
        }
        return result
    }
}
