/// What the status page's timeline reads from the retained events.
public struct TimelineRecords: Sendable {
    /// From the last `span` or the oldest retained event, whichever is later, to now; later
    /// still when `truncated`.
    public var window: TimelineWindow
    /// State changes, downtimes, quality exceptions raised and work orders started, oldest first.
    public var records: [TimelineRecord]
    /// Good parts by machine and bucket start (`bucket` ms wide).
    public var parts: [String: [Int64: Double]]
    public var bucket: Int64
    /// The row bound was reached: the window starts at the oldest record read.
    public var truncated: Bool

    public init(
        window: TimelineWindow, records: [TimelineRecord] = [], parts: [String: [Int64: Double]] = [:],
        bucket: Int64 = 3_600_000, truncated: Bool = false
    ) {
        self.window = window
        self.records = records
        self.parts = parts
        self.bucket = bucket
        self.truncated = truncated
    }
}
