/// RFC 9562 UUIDv7 ids, monotonic within one generator: the 12-bit `rand_a` field counts
/// within a millisecond, so ids sort in append order even at a million events per second.
public struct UUIDv7Generator: Sendable {
    private var rng = FastRandom()
    private var lastMs: Int64 = 0
    private var counter: UInt64 = 0

    public init() {}

    public mutating func next(now: Timestamp) -> String {
        var out: [UInt8] = []
        append(now: now, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends a new id's 36 characters.
    public mutating func append(now: Timestamp, to out: inout [UInt8]) {
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
        Hex.append(high >> 32, digits: 8, to: &out)
        out.append(UInt8(ascii: "-"))
        Hex.append(high >> 16, digits: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        Hex.append(high, digits: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        Hex.append(low >> 48, digits: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        Hex.append(low, digits: 12, to: &out)
    }

    /// A W3C traceparent with a fresh trace and span id, sampled.
    public mutating func traceparent() -> String {
        var out: [UInt8] = []
        appendTraceparent(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public mutating func appendTraceparent(to out: inout [UInt8]) {
        out.append(contentsOf: "00-".utf8)
        Hex.append(rng.next(), digits: 16, to: &out)
        Hex.append(rng.next(), digits: 16, to: &out)
        out.append(UInt8(ascii: "-"))
        Hex.append(rng.next(), digits: 16, to: &out)
        out.append(contentsOf: "-01".utf8)
    }
}

enum Hex {
    /// The lowercase hex digit of `nibble` (0...15).
    @inline(__always)
    static func digit(_ nibble: UInt64) -> UInt8 {
        UInt8(truncatingIfNeeded: nibble < 10 ? 48 + nibble : 87 + nibble)
    }

    /// Appends the low `digits` hex digits of `value` (at most 16), written in place: ids and
    /// traceparents are on every appended event, so no per-digit append or table lookup.
    static func append(_ value: UInt64, digits: Int, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        out.withUnsafeMutableBufferPointer { buffer in
            var v = value
            for index in stride(from: start + digits - 1, through: start, by: -1) {
                buffer[index] = digit(v & 0xF)
                v >>= 4
            }
        }
    }
}
