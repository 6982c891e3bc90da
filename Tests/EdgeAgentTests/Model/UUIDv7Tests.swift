import EdgeAgent
import EdgeAgentCore
import Testing

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
    }

    @Test func traceparentIsW3CShaped() {
        var generator = UUIDv7Generator()
        let parts = generator.traceparent().split(separator: "-")
        #expect(parts.map(\.count) == [2, 32, 16, 2])
        #expect(parts[0] == "00" && parts[3] == "01")
    }
}
