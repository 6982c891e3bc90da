import EdgeAgent
import Testing

@testable import EdgeAgentCore

@Suite struct UUIDv7Tests {
    @Test func idsAreVersion7SortedAndUnique() {
        var generator = UUIDv7Generator()
        let now = Timestamp(milliseconds: 1_795_096_428_123)
        let ids = (0..<20_000).map { _ in generator.next(now: now) }
        #expect(Set(ids).count == ids.count)
        #expect(ids == ids.sorted(), "ids from one generator sort in the order they were made")
        let first = Array(ids[0])
        #expect(ids[0].count == 36 && first[14] == "7" && "89ab".contains(first[19]))
        #expect(ids[0].hasPrefix("01a1"), "the first 48 bits are the Unix milliseconds")
        // Built on uninitialised stack bytes: every character of every id is in its place.
        let dashes: Set = [8, 13, 18, 23]
        let badIDs = ids.filter { id in
            id.utf8.count != 36
                || !id.utf8.enumerated().allSatisfy { i, c in
                    dashes.contains(i) ? c == UInt8(ascii: "-") : Self.isLowercaseHex(c)
                }
        }
        #expect(badIDs.isEmpty, "\(badIDs.prefix(3))")
    }

    static func isLowercaseHex(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c)
    }

    @Test func traceparentIsW3CShaped() {
        var generator = UUIDv7Generator()
        let parts = generator.traceparent().split(separator: "-")
        #expect(parts.map(\.count) == [2, 32, 16, 2])
        #expect(parts[0] == "00" && parts[3] == "01")
        let bad = (0..<5000).map { _ in generator.traceparent() }.filter { text in
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            return parts.map(\.count) != [2, 32, 16, 2] || parts[0] != "00" || parts[3] != "01"
                || !parts[1...2].allSatisfy { $0.utf8.allSatisfy(Self.isLowercaseHex) }
        }
        #expect(bad.isEmpty, "\(bad.prefix(3))")
    }

    /// The digits are the value's, not only hex-shaped: every digit count, edge values and random ones.
    @Test func hexDigitsAreTheValuesLowDigits() {
        var rng = FastRandom(seed: 7)
        let values: [UInt64] =
            [0, 1, 9, 10, 15, 16, 0xABCDEF, .max, 0x0123_4567_89AB_CDEF] + (0..<2000).map { _ in rng.next() }
        var wrong: [String] = []
        for value in values {
            let full = String(value, radix: 16)
            let padded = String(repeating: "0", count: 16 - full.count) + full
            for digits in 1...16 {
                let text = [UInt8](unsafeUninitializedCapacity: digits) { buffer, count in
                    Hex.write(value, digits: digits, at: buffer.baseAddress!)
                    count = digits
                }
                if String(decoding: text, as: UTF8.self) != String(padded.suffix(digits)) {
                    wrong.append("\(padded) \(digits): \(String(decoding: text, as: UTF8.self))")
                }
            }
        }
        #expect(values.count == 2009)
        #expect(wrong.isEmpty, "\(wrong.prefix(3))")
    }
}
