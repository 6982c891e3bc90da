/// Builds the CloudEvents 1.0 JSON of an event once, when it is appended (SPEC 4), as UTF-8
/// bytes: no per-event String on the hot path. The sequence is left as twenty zeros for the
/// writer to fill in (`EncodedEvents.number`): it is the one field only the writer can know, and
/// leaving it open lets the envelopes be built off the writer's thread.
public struct EnvelopeEncoder: Sendable {
    private var ids = UUIDv7Generator()
    private let sourceJSON: [UInt8]

    public init(source: String) {
        var s: [UInt8] = []
        JSONValue.writeString(source, to: &s)
        sourceJSON = s
    }

    private static let head: StaticString = #"{"specversion":"1.0","id":""#
    /// Where the id sits in an event's bytes (it is stored in its own column too).
    public static let idRange = head.utf8CodeUnitCount..<head.utf8CodeUnitCount + 36
    /// The last `recordedtime` written: every event of an append has the same.
    private var recordedText: (milliseconds: Int64, text: [UInt8]) = (.min, [])

    /// Appends the event's JSON to `out`.
    public mutating func encode(_ event: Event, recorded: Timestamp, into out: inout EncodedEvents) {
        out.bytes.appendLiteral(Self.head)
        ids.append(now: recorded, to: &out.bytes)
        out.bytes.appendLiteral(#"","source":"#)
        out.bytes.append(contentsOf: sourceJSON)
        out.bytes.appendLiteral(#","type":"#)
        JSONValue.writeString(event.type.name, to: &out.bytes)
        out.bytes.appendLiteral(#","subject":"#)
        JSONValue.writeString(event.subject, to: &out.bytes)
        out.bytes.appendLiteral(#","time":""#)
        event.time.appendRFC3339(to: &out.bytes)
        out.bytes.appendLiteral(#"","datacontenttype":"application/json","sequence":""#)
        out.sequenceAt.append(out.bytes.count)
        out.bytes.appendLiteral("00000000000000000000")
        out.bytes.appendLiteral(#"","recordedtime":""#)
        if recordedText.milliseconds != recorded.milliseconds {
            recordedText = (recorded.milliseconds, [])
            recorded.appendRFC3339(to: &recordedText.text)
        }
        out.bytes.append(contentsOf: recordedText.text)
        out.bytes.appendLiteral(#"","traceparent":""#)
        ids.appendTraceparent(to: &out.bytes)
        out.bytes.appendLiteral(#"","data":"#)
        event.data.write(to: &out.bytes)
        out.bytes.append(UInt8(ascii: "}"))
        out.ends.append(out.bytes.count)
    }
}

extension [UInt8] {
    /// A literal's bytes, copied straight from the binary (no String to look into first).
    @inline(__always)
    mutating func appendLiteral(_ literal: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}

/// Consecutive encoded events in one buffer: event `i` is `bytes[start(i)..<ends[i]]`, its
/// sequence's twenty digits at `sequenceAt[i]`.
public struct EncodedEvents: Sendable {
    public var bytes: [UInt8] = []
    public var ends: [Int] = []
    public var sequenceAt: [Int] = []

    public init(capacity: Int = 0, bytes: Int = 0) {
        self.bytes.reserveCapacity(bytes)
        ends.reserveCapacity(capacity)
        sequenceAt.reserveCapacity(capacity)
    }

    public var count: Int { ends.count }
    @inlinable public func start(_ i: Int) -> Int { i == 0 ? 0 : ends[i - 1] }

    /// Writes `sequence` into event `i`'s placeholder, zero-padded so sequences order as strings.
    @inlinable public mutating func number(_ i: Int, _ sequence: Int64) {
        var v = UInt64(sequence)
        var at = sequenceAt[i] + 19
        while v > 0 {
            bytes[at] = UInt8(48 + v % 10)
            v /= 10
            at -= 1
        }
    }
}
