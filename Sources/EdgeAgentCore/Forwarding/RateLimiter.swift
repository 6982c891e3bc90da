/// A token bucket: `rate` events per second with a burst of one second's worth (SPEC 7).
///
/// The time is the caller's: `now` is measured from any origin that stays the same.
public struct RateLimiter: Sendable, Equatable {
    public let rate: Double
    private var tokens: Double
    private var last: Duration?

    public init(rate: Double) {
        self.rate = rate
        tokens = rate
    }

    /// Takes `count` tokens at `now`; returns how long to wait before sending them.
    /// A batch larger than the bucket is let through and paid for afterwards.
    public mutating func take(_ count: Int, now: Duration) -> Duration {
        if let last { tokens = min(rate, tokens + rate * (now - last).seconds) }
        last = now
        tokens -= Double(count)
        return tokens >= 0 ? .zero : .milliseconds(Int64((-tokens / rate * 1000).rounded(.up)))
    }
}
