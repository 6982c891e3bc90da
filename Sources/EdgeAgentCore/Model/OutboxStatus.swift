import Foundation

/// What one sink has in the outbox: pending, the oldest pending one's age, delivered, dead.
public struct SinkStatus: Sendable, Equatable, Codable {
    public var pending: Int64
    public var oldest_pending_age_s: Double?
    public var dead: Int64
    public var delivered: Int64

    public init(pending: Int64, oldest_pending_age_s: Double?, dead: Int64, delivered: Int64) {
        self.pending = pending
        self.oldest_pending_age_s = oldest_pending_age_s
        self.dead = dead
        self.delivered = delivered
    }

    /// The sink's line in `outbox status` and in the status page's text form.
    public func line(sink: String) -> String {
        let age = oldest_pending_age_s.map { String(format: "%.1fs", $0) } ?? "-"
        return "sink \(sink): pending \(pending), oldest \(age), delivered \(delivered), dead \(dead)"
    }

    /// SPEC 2: `oldest_pending_age_s` is always there, `null` when nothing is pending.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pending, forKey: .pending)
        try c.encode(oldest_pending_age_s, forKey: .oldest_pending_age_s)
        try c.encode(dead, forKey: .dead)
        try c.encode(delivered, forKey: .delivered)
    }
}

/// The outbox as `outbox status`, `/status` and the outbox gauges show it (SPEC 2, 6).
public struct OutboxStatus: Sendable, Equatable, Codable {
    public var outbox_bytes: Int64
    public var sinks: [String: SinkStatus]

    public init(outbox_bytes: Int64, sinks: [String: SinkStatus]) {
        self.outbox_bytes = outbox_bytes
        self.sinks = sinks
    }
}
