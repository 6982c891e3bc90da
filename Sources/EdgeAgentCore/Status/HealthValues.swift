import Foundation

// The values the stages report and the status page shows. The agent's AgentHealth and SinkHealth
// hold them behind locks; the page renders them (StatusPage), so they live where it does.

/// A device as its poller last reported it.
public struct DeviceHealth: Sendable {
    public var connected: Bool?
    public var error: String?
    public var lastPoll: Timestamp?
    /// Polls that failed (the device did not answer) since the agent started.
    public var failedPolls = 0
    public init() {}
}

/// A machine as the rules last committed it, and its good and scrap counted today.
public struct MachineHealth: Sendable {
    public var state: String?
    public var since: Timestamp?
    public var downtime: RuleState.Downtime?
    public var workOrder: String?
    public var openExceptions: [String] = []
    public var good: Int64 = 0
    public var scrap: Int64 = 0
    public init() {}
}

/// The day good and scrap are counted for (local time) and since when: the agent's start on
/// its first day, midnight after; `until` is the next local midnight.
public struct CountingDay: Sendable {
    public var day: String
    public var since: Timestamp
    public var from: Timestamp
    public var until: Timestamp
    public init(day: String, since: Timestamp, from: Timestamp? = nil, until: Timestamp? = nil) {
        self.day = day
        self.since = since
        self.from = from ?? since
        self.until = until ?? Timestamp(milliseconds: .max)
    }

    /// The local day of `now`, counted since `since` (its midnight when nil).
    public static func day(of now: Timestamp, since: Timestamp? = nil) -> CountingDay {
        let date = Date(timeIntervalSince1970: Double(now.milliseconds) / 1000)
        let calendar = Calendar.current
        let start = calendar.startOfDay(for: date)
        let end = calendar.date(byAdding: .day, value: 1, to: start) ?? start.addingTimeInterval(86_400)
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        let from = Timestamp(milliseconds: Int64(start.timeIntervalSince1970 * 1000))
        return CountingDay(
            day: String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0), since: since ?? from,
            from: from,
            until: Timestamp(milliseconds: Int64(end.timeIntervalSince1970 * 1000)))
    }
}

public struct HealthWarning: Sendable {
    public var time: Timestamp
    public var level: Level
    public var message: String

    /// The levels the page lists: what the log says at warning and above.
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case warning, error, critical
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var description: String {
            switch self {
            case .warning: "warning"
            case .error: "error"
            case .critical: "critical"
            }
        }
    }

    public init(time: Timestamp, level: Level, message: String) {
        self.time = time
        self.level = level
        self.message = message
    }
}

/// What a forwarder tells the rest of the agent about its sink: for `/readyz`, the log and the page.
public struct SinkHealthSnapshot: Sendable {
    public var delivered: Int = 0
    public var failing: FailureReason?
    /// Set while the sink answers 401/403/404: a configuration problem, not a passing fault.
    public var misconfigured: String?
    /// Set while this sink's forwarder cannot claim or settle (the outbox fails for it).
    public var outboxError: String?
    /// The last failure of any kind and when, kept after recovery (for the status page).
    public var lastError: String?
    public var lastErrorAt: Timestamp?
    public init() {}
}
