/// RFC 9562 UUIDv7 ids, monotonic within one generator: the 12-bit `rand_a` field counts
/// within a millisecond, so ids sort in append order even at a million events per second.
public struct UUIDv7Generator: Sendable {
    private var rng = FastRandom()
    private var lastMs: Int64 = 0
    private var counter: UInt64 = 0

    public init() {}

    public mutating func next(now: Timestamp) -> String {
        var ms = now.milliseconds
        if ms <= lastMs {
            ms = lastMs
            counter += 1
            if counter > 0xFFF {
                ms += 1
                counter = 0
            }
        } else {
            counter = rng.next() & 0x7FF
        }
        lastMs = ms
        let high = (UInt64(ms) << 16) | 0x7000 | counter
        let low = (rng.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return Hex.uuid(high, low)
    }

    /// A W3C traceparent with a fresh trace and span id, sampled.
    public mutating func traceparent() -> String {
        "00-" + Hex.digits(rng.next(), 16) + Hex.digits(rng.next(), 16) + "-" + Hex.digits(rng.next(), 16) + "-01"
    }
}

enum Hex {
    private static let table: [UInt8] = Array("0123456789abcdef".utf8)

    static func digits(_ value: UInt64, _ count: Int) -> String {
        String(unsafeUninitializedCapacity: count) { buf in
            var v = value
            for i in stride(from: count - 1, through: 0, by: -1) {
                buf[i] = table[Int(v & 0xF)]
                v >>= 4
            }
            return count
        }
    }

    static func uuid(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buf in
            var h = high, l = low
            for i in stride(from: 35, through: 0, by: -1) {
                if i == 8 || i == 13 || i == 18 || i == 23 {
                    buf[i] = 45
                    continue
                }
                if i > 18 {
                    buf[i] = table[Int(l & 0xF)]
                    l >>= 4
                } else {
                    buf[i] = table[Int(h & 0xF)]
                    h >>= 4
                }
            }
            return 36
        }
    }
}
