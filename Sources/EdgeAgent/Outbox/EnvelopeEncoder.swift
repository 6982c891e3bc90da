/// Builds the CloudEvents 1.0 JSON of an event once, when it is appended (SPEC 4).
struct EnvelopeEncoder {
    let source: String
    private var ids = UUIDv7Generator()
    private let sourceJSON: String

    init(source: String) {
        self.source = source
        var s = ""
        JSONValue.writeString(source, to: &s)
        sourceJSON = s
    }

    mutating func encode(_ event: Event, sequence: Int64, recorded: Timestamp) -> (id: String, body: String) {
        let id = ids.next(now: recorded)
        var out = ""
        out.reserveCapacity(400)
        out += "{\"specversion\":\"1.0\",\"id\":\""
        out += id
        out += "\",\"source\":"
        out += sourceJSON
        out += ",\"type\":"
        JSONValue.writeString(event.type.name, to: &out)
        out += ",\"subject\":"
        JSONValue.writeString(event.subject, to: &out)
        out += ",\"time\":\""
        event.time.appendRFC3339(to: &out)
        out += "\",\"datacontenttype\":\"application/json\",\"sequence\":\""
        out += Self.padded(sequence)
        out += "\",\"recordedtime\":\""
        recorded.appendRFC3339(to: &out)
        out += "\",\"traceparent\":\""
        out += ids.traceparent()
        out += "\",\"data\":"
        event.data.write(to: &out)
        out += "}"
        return (id, out)
    }

    /// Twenty digits, zero-padded, so sequences order as strings.
    static func padded(_ n: Int64) -> String {
        String(unsafeUninitializedCapacity: 20) { buf in
            var v = UInt64(n)
            for i in stride(from: 19, through: 0, by: -1) {
                buf[i] = UInt8(48 + v % 10)
                v /= 10
            }
            return 20
        }
    }
}
