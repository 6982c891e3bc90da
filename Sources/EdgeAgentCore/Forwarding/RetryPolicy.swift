#if canImport(Glibc)
    import Glibc  // pow
#elseif canImport(Darwin)
    import Darwin
#endif

/// Exponential backoff with full jitter (SPEC 3 `retry`).
///
/// | attempt | ceiling (defaults: 500ms, x2, max 10s) |
/// |---|---|
/// | 1 | 500 ms |
/// | 2 | 1 s |
/// | 3 | 2 s |
/// | 6+ | 10 s |
///
/// The delay is uniform in [0, ceiling]; a `Retry-After` from the server wins, whatever it says.
public struct RetryPolicy: Sendable, Equatable {
    public var initial: Duration
    public var max: Duration
    public var multiplier: Double

    public init(_ retry: SinkConfig.Retry) {
        initial = retry.initial
        max = retry.max
        multiplier = retry.multiplier
    }

    public func ceiling(attempt: Int) -> Duration {
        let ms = Double(initial.milliseconds) * pow(multiplier, Double(Swift.max(0, attempt - 1)))
        return .milliseconds(Int64(Swift.min(ms, Double(max.milliseconds))))
    }

    /// The wait before retry number `attempt` (1-based).
    public func delay<R: RandomNumberGenerator>(attempt: Int, retryAfter: Duration? = nil, using random: inout R)
        -> Duration
    {
        if let retryAfter { return retryAfter }
        let ceiling = ceiling(attempt: attempt).milliseconds
        return .milliseconds(ceiling <= 0 ? 0 : Int64.random(in: 0...ceiling, using: &random))
    }
}
