import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// A file whose bytes change in place after pass one checked them: pass two sends only rows from
/// blocks whose bytes are those checked, and says why it stopped.
@Suite struct HistorianFileChangeTests {
    /// A long export of `rows` rows at one a second, about 3 MiB for 100,000 rows.
    static func export(_ rows: Int) -> String {
        var text = "Timestamp,TagName,Value\n"
        for i in 0..<rows { text += "\(1_790_000_000 + i),P1.COUNT,\(i)\n" }
        return text
    }

    static var config: HistorianConfig {
        var config = HistorianConfig(name: "t", directory: "/unused", timestampColumn: "Timestamp")
        config.timestampFormat = "unix_s"
        config.tagColumn = "TagName"
        config.valueColumn = "Value"
        config.tags = [(source: "P1.COUNT", tag: "p1.count")]
        return config
    }

    /// Checks `path`, lets `change` act on it, then reads its chunks.
    static func takeChanged(_ path: String, _ change: (FileHandle) throws -> Void) throws -> (
        rows: Int, chunks: [HistorianIngestor.Chunk], change: String?
    ) {
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        guard case let .valid(rows, ordered) = HistorianIngestor.check(file, config: config, textTags: []) else {
            Issue.record("the file did not check")
            return (0, [], nil)
        }
        let digests = try HistorianIngestor.digests(file)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try change(handle)
        try handle.close()
        var chunks: [HistorianIngestor.Chunk] = []
        try HistorianIngestor.readChunks(
            file, digests: digests, config: config, textTags: [], reads: nil, chunkSamples: 1000, ordered: ordered,
            skipping: 0,
            sortDirectory: NSTemporaryDirectory() + "/unused"
        ) { chunks.append($0) }
        return (rows, chunks, file.change())
    }

    @Test func bytesRewrittenInPlaceEndTheRowsAtTheFirstBlockThatDiffers() throws {
        let dir = TemporaryDirectory()
        let text = Self.export(100_000)
        let path = dir.write("a.csv", text)
        let (rows, chunks, change) = try Self.takeChanged(path) { handle in
            try handle.seek(toOffset: 1_500_000)  // in the second block: digits become letters
            try handle.write(contentsOf: Data("xxxx".utf8))
        }
        let last = try #require(chunks.last)
        #expect(last.last && last.changed == "it was rewritten")
        #expect(chunks.dropLast().allSatisfy { !$0.last && $0.changed == nil })
        let rowsInFirstBlock = text.utf8.prefix(1 << 20).filter { $0 == UInt8(ascii: "\n") }.count - 1
        #expect(last.rowsDone == rowsInFirstBlock, "of \(rows)")
        let samples = chunks.flatMap(\.samples)
        #expect(samples.count == rowsInFirstBlock)
        #expect(samples.map(\.value) == (0..<rowsInFirstBlock).map { .int(Int64($0)) }, "each row once, in order")
        #expect(change == "it was rewritten")
    }

    @Test func aTruncatedFileEndsItsRowsWhereItsCheckedBytesEnd() throws {
        let dir = TemporaryDirectory()
        let text = Self.export(100_000)
        let path = dir.write("a.csv", text)
        let (_, chunks, change) = try Self.takeChanged(path) { try $0.truncate(atOffset: 1_200_000) }
        let last = try #require(chunks.last)
        #expect(last.last && last.changed == "it was truncated")
        let rowsInFirstBlock = text.utf8.prefix(1 << 20).filter { $0 == UInt8(ascii: "\n") }.count - 1
        #expect(chunks.flatMap(\.samples).count == rowsInFirstBlock)
        #expect(change == "it was truncated")
    }

    @Test func rowsAppendedAfterTheCheckAreNotRead() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.csv", Self.export(100_000))
        let (rows, chunks, change) = try Self.takeChanged(path) { handle in
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("1790200000,P1.COUNT,7\nnot a row\n".utf8))
        }
        let last = try #require(chunks.last)
        #expect(last.last && last.changed == nil && last.rowsDone == rows)
        #expect(chunks.flatMap(\.samples).count == 100_000)
        #expect(change == "rows were appended")
    }
}
