/// One reading of one tag: what every input produces and the rules consume.
public struct Sample: Sendable, Equatable {
    public enum Quality: String, Sendable, Codable { case good, bad }

    /// `DEVICE.TAG` for Modbus tags, the mapped agent tag for historian data.
    public var tag: String
    public var value: TagValue?
    public var quality: Quality
    /// When it was read at the source (poll time, historian row time).
    public var time: Timestamp

    public init(tag: String, value: TagValue?, quality: Quality = .good, time: Timestamp) {
        self.tag = tag
        self.value = value
        self.quality = value == nil ? .bad : quality
        self.time = time
    }
}
