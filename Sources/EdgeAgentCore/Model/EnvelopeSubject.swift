import Foundation  // memchr, memcmp

/// The `subject` of an envelope as `EnvelopeEncoder` stored it, read from its bytes without
/// parsing the JSON: sinks key and route each record by it (SPEC 5.3, 5.4). The first
/// `"subject":"` is the envelope's: the fields before it are strings, whose quotes are escaped.
/// The encoder escapes a quote, a backslash and control characters (`JSONValue.writeString`),
/// so a subject holding one is unescaped into a copy; any other is used in place.
public enum EnvelopeSubject {
    static let marker = Array(#""subject":""#.utf8)

    /// Where the subject's encoded text lies in `bytes` (empty when it has none), and whether
    /// a character of it is escaped. `memchr` looks for the marker's `j`, the rarest of its
    /// bytes in an envelope, and each one found is checked for the whole marker around it: a
    /// record's key then costs about one call.
    public static func span(in bytes: UnsafeBufferPointer<UInt8>) -> (range: Range<Int>, escaped: Bool) {
        guard let base = bytes.baseAddress else { return (0..<0, false) }
        let j = 4  // `j`'s place in the marker
        var from = j
        while from < bytes.count, let found = memchr(base + from, Int32(UInt8(ascii: "j")), bytes.count - from) {
            let at = base.distance(to: found.assumingMemoryBound(to: UInt8.self)) - j
            let start = at + marker.count
            if start <= bytes.count, memcmp(base + at, marker, marker.count) == 0 {
                var end = start
                var escaped = false
                while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                    if bytes[end] == UInt8(ascii: "\\") {
                        escaped = true
                        end += 1
                    }
                    end += 1
                }
                return (start..<min(end, bytes.count), escaped)
            }
            from = at + j + 1
        }
        return (0..<0, false)
    }

    /// Calls `body` with the subject's UTF-8 read from the envelope's `bytes`: in place, or an
    /// unescaped copy when the encoder escaped a character of it.
    public static func withSubject<R>(
        in bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> R
    ) -> R {
        let (range, escaped) = span(in: bytes)
        guard escaped else { return body(UnsafeBufferPointer(rebasing: bytes[range])) }
        return unescaped(bytes[range]).withUnsafeBufferPointer(body)
    }

    /// The subject of the envelope stored as `body`.
    public static func of(_ body: Substring) -> String {
        var body = body
        return body.withUTF8 { bytes in withSubject(in: bytes) { String(decoding: $0, as: UTF8.self) } }
    }

    public static func of(_ body: String) -> String { of(body[...]) }

    /// The text of a JSON string's encoded `bytes` (between its quotes). A `\u` escape of a
    /// surrogate half, which the encoder never writes, becomes U+FFFD.
    static func unescaped(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let byte = bytes[i]
            i += 1
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                continue
            }
            guard i < bytes.endIndex else { break }  // an envelope cut inside an escape
            let kind = bytes[i]
            i += 1
            switch kind {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u") where i + 4 <= bytes.endIndex:
                let hex = String(decoding: bytes[i..<i + 4], as: UTF8.self)
                i += 4
                let scalar = UInt32(hex, radix: 16).flatMap(Unicode.Scalar.init) ?? "\u{FFFD}"
                out.append(contentsOf: String(Character(scalar)).utf8)
            default: out.append(kind)  // `"`, `\`, `/`
            }
        }
        return out
    }
}
