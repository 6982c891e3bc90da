import EdgeAgentCore

/// Builds the CloudEvents 1.0 JSON of an event once, when it is appended (SPEC 4), as UTF-8
/// bytes into a buffer the writer reuses: no per-event String on the hot path.
struct EnvelopeEncoder {
    private var ids = UUIDv7Generator()
    private let sourceJSON: [UInt8]

    init(source: String) {
        var s: [UInt8] = []
        JSONValue.writeString(source, to: &s)
        sourceJSON = s
    }

    private static let head = Array(#"{"specversion":"1.0","id":""#.utf8)
    /// Where the id sits in the encoded bytes (it is stored in its own column too).
    static let idRange = head.count..<head.count + 36

    /// Replaces `out` with the event's JSON.
    mutating func encode(_ event: Event, sequence: Int64, recorded: Timestamp, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: Self.head)
        ids.append(now: recorded, to: &out)
        out.append(contentsOf: #"","source":"#.utf8)
        out.append(contentsOf: sourceJSON)
        out.append(contentsOf: #","type":"#.utf8)
        JSONValue.writeString(event.type.name, to: &out)
        out.append(contentsOf: #","subject":"#.utf8)
        JSONValue.writeString(event.subject, to: &out)
        out.append(contentsOf: #","time":""#.utf8)
        event.time.appendRFC3339(to: &out)
        out.append(contentsOf: #"","datacontenttype":"application/json","sequence":""#.utf8)
        Self.appendPadded(sequence, to: &out)
        out.append(contentsOf: #"","recordedtime":""#.utf8)
        recorded.appendRFC3339(to: &out)
        out.append(contentsOf: #"","traceparent":""#.utf8)
        ids.appendTraceparent(to: &out)
        out.append(contentsOf: #"","data":"#.utf8)
        event.data.write(to: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// Twenty digits, zero-padded, so sequences order as strings.
    static func appendPadded(_ n: Int64, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: 20))
        var v = UInt64(n)
        var i = start + 19
        while v > 0 {
            out[i] = UInt8(48 + v % 10)
            v /= 10
            i -= 1
        }
    }
}
