import EdgeAgentCore

/// What the timeline has read so far: each page then reads only the events appended since
/// (extracting fields from the events' JSON is what costs).
public struct TimelineCache: Sendable {
    /// The last sequence read.
    var through: Int64 = 0
    var bucket: Int64 = 0
    /// Oldest first, in the order appended.
    var records: [TimelineRecord] = []
    var parts: [String: [Int64: Double]] = [:]
    /// Where the row bound cut the records read: the window starts there at the earliest.
    var cut: Timestamp?

    public init() {}
}

extension OutboxDatabase {
    /// The retained events of the last `span` the timeline draws, in one read snapshot, at most
    /// `maxRows` records (the newest) and `budget` of time: a reader connection in WAL mode never
    /// blocks the writer, and a short snapshot keeps checkpoints free to run. `saved` holds what
    /// earlier calls read: only newer events are read again. It changes only when the read
    /// completes (one interrupted past its budget leaves it as it was).
    public func timeline(
        now: Timestamp = .now(), span: Int64 = 12 * 3_600_000, maxRows: Int = 20_000, budget: Duration = .seconds(2),
        cache saved: inout TimelineCache
    ) throws -> TimelineRecords {
        var cache = saved
        return try db.within(budget) {
            try db.execute("BEGIN")
            defer { try? db.execute("COMMIT") }
            guard let oldest = try db.scalar("SELECT time_ms FROM events ORDER BY seq LIMIT 1"),
                let newest = try db.scalar("SELECT max(seq) FROM events")
            else {
                saved = TimelineCache()
                return TimelineRecords(window: TimelineWindow(from: now, to: now))
            }
            var window = TimelineWindow(
                from: Timestamp(milliseconds: max(now.milliseconds - span, min(oldest, now.milliseconds))), to: now)
            let bucket = window.step(atMost: 13)
            // Parts are summed by whole buckets, the first one too (drawn cut at the window's start).
            let partsFrom = window.from.milliseconds / bucket * bucket
            if cache.bucket != bucket || cache.through > newest {
                // Events are appended in time order give or take the clock's steps: the first one
                // recorded a minute before the window is where the scan starts (no index on time).
                cache = TimelineCache()
                cache.bucket = bucket
                cache.through = try firstSequence(recordedFrom: partsFrom - 60_000) - 1
            }
            let statement = try db.prepare(
                """
                SELECT type, time_ms, json_extract(body, '$.data.machine'), json_extract(body, '$.data.state'),
                    json_extract(body, '$.data.previous_state'), json_extract(body, '$.data.previous_duration_ms'),
                    json_extract(body, '$.data.reason_code'), json_extract(body, '$.data.duration_ms'),
                    json_extract(body, '$.data.check'), json_extract(body, '$.data.severity'),
                    json_extract(body, '$.data.work_order')
                FROM events WHERE seq > ?1 AND seq <= ?2 AND time_ms >= ?3 AND type IN (
                    'machine.state.changed', 'machine.downtime.started', 'machine.downtime.ended',
                    'quality.exception.raised', 'work_order.started')
                ORDER BY seq DESC LIMIT ?4
                """)
            try statement.bind([
                .int(cache.through), .int(newest), .int(window.from.milliseconds), .int(Int64(maxRows)),
            ])
            var fresh: [TimelineRecord] = []
            while try statement.step() {
                let time = Timestamp(milliseconds: statement.int(1))
                let machine = statement.text(2)
                func optionalInt(_ column: Int32) -> Int64? { statement.isNull(column) ? nil : statement.int(column) }
                switch statement.text(0) {
                case "machine.state.changed":
                    fresh.append(
                        .state(
                            machine: machine, at: time, state: statement.text(3),
                            previous: statement.isNull(4) ? nil : statement.text(4), previousFor: optionalInt(5)))
                case "machine.downtime.started":
                    fresh.append(.downtime(machine: machine, from: time, to: nil, reason: optionalInt(6)))
                case "machine.downtime.ended":
                    let from = time.adding(milliseconds: -(optionalInt(7) ?? 0))
                    fresh.append(.downtime(machine: machine, from: from, to: time, reason: optionalInt(6)))
                case "quality.exception.raised":
                    fresh.append(
                        .quality(machine: machine, at: time, check: statement.text(8), severity: statement.text(9)))
                default:
                    fresh.append(.workOrder(machine: machine, at: time, order: statement.text(10)))
                }
            }
            let parts = try db.prepare(
                """
                SELECT json_extract(body, '$.data.machine'), time_ms / ?4 * ?4, total(json_extract(body, '$.data.quantity'))
                FROM events WHERE seq > ?1 AND seq <= ?2 AND time_ms >= ?3 AND type = 'production.completed'
                GROUP BY 1, 2
                """)
            try parts.bind([.int(cache.through), .int(newest), .int(partsFrom), .int(bucket)])
            while try parts.step() {
                cache.parts[parts.text(0), default: [:]][parts.int(1), default: 0] += parts.double(2)
            }
            cache.through = newest

            // What fell out of the window goes.
            cache.records.removeAll { Self.time(of: $0) < window.from }
            cache.records += fresh.reversed()
            cache.parts = cache.parts.mapValues { $0.filter { $0.key >= partsFrom } }
            if fresh.count >= maxRows || cache.records.count > maxRows {
                // Before the oldest record kept, what the page would draw is incomplete.
                cache.records.removeFirst(max(0, cache.records.count - maxRows))
                cache.cut = max(cache.cut ?? window.from, Self.time(of: cache.records[0]))
            }
            let truncated = cache.cut.map { $0 > window.from } ?? false
            if truncated, let cut = cache.cut { window = TimelineWindow(from: cut, to: now) }
            // Oldest first; a downtime's end sorts after its start.
            let records = cache.records.sorted { Self.time(of: $0) < Self.time(of: $1) }
            saved = cache
            return TimelineRecords(
                window: window, records: records, parts: cache.parts, bucket: bucket, truncated: truncated)
        }
    }

    /// The timeline read afresh (the page's first read, and tests).
    public func timeline(
        now: Timestamp = .now(), span: Int64 = 12 * 3_600_000, maxRows: Int = 20_000, budget: Duration = .seconds(2)
    ) throws -> TimelineRecords {
        var cache = TimelineCache()
        return try timeline(now: now, span: span, maxRows: maxRows, budget: budget, cache: &cache)
    }

    /// The first sequence recorded at or after `ms`, found by bisection on the sequence (the
    /// table's key): recording times rise with it.
    private func firstSequence(recordedFrom ms: Int64) throws -> Int64 {
        var low = try db.scalar("SELECT min(seq) FROM events") ?? 0
        var high = (try db.scalar("SELECT max(seq) FROM events") ?? 0) + 1
        while low < high {
            let middle = low + (high - low) / 2
            let recorded =
                try db.scalar("SELECT recorded_ms FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1", [.int(middle)])
                ?? Int64.max
            if recorded < ms { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private static func time(of record: TimelineRecord) -> Timestamp {
        switch record {
        case let .state(_, at, _, _, _), let .quality(_, at, _, _), let .workOrder(_, at, _): at
        case let .downtime(_, from, to, _): to ?? from
        }
    }
}
