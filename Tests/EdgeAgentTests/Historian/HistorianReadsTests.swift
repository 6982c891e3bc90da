import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// Pass two makes samples only of the mapped tags the rules read or publish (`RuleSet.reads`):
/// the others would change nothing. Pass one still checks every mapped cell, and a file's
/// progress still counts its rows, so a resume skips exactly what was committed.
@Suite struct HistorianReadsTests {
    static var config: HistorianConfig {
        var config = HistorianConfig(name: "t", directory: "/unused", timestampColumn: "Timestamp")
        config.timestampFormat = "unix_s"
        config.tagColumn = "TagName"
        config.valueColumn = "Value"
        config.tags = [
            (source: "P1.COUNT", tag: "p1.count"), (source: "P1.TEMP", tag: "p1.temp"),
            (source: "P1.STATE", tag: "p1.state"),
        ]
        return config
    }

    /// Three mapped tags a second, `times` seconds; `at(i)` is the time of the i-th second.
    static func export(_ times: Int, at: (Int) -> Int = { 1_790_000_000 + $0 }) -> String {
        var text = "Timestamp,TagName,Value\n"
        for i in 0..<times {
            text += "\(at(i)),P1.COUNT,\(i)\n\(at(i)),P1.TEMP,\(i).5\n\(at(i)),P1.STATE,\(i % 2)\n"
        }
        return text
    }

    /// Pass one, then pass two's chunks after the first `done` rows.
    static func chunks(_ path: String, reads: Set<String>?, skipping done: Int = 0) throws -> [HistorianIngestor.Chunk]
    {
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        guard case let .valid(_, ordered) = HistorianIngestor.check(file, config: config, textTags: []) else {
            Issue.record("the file did not check")
            return []
        }
        var chunks: [HistorianIngestor.Chunk] = []
        try HistorianIngestor.readChunks(
            file, digests: try HistorianIngestor.digests(file), config: config, textTags: [], reads: reads,
            chunkSamples: 100, ordered: ordered, skipping: done,
            sortDirectory: NSTemporaryDirectory() + "/historian-reads-\(UUID().uuidString)"
        ) { chunks.append($0) }
        return chunks
    }

    static func samples(_ chunks: [HistorianIngestor.Chunk]) -> [String] {
        chunks.flatMap(\.samples).map { "\($0.tag) \($0.value.map { "\($0)" } ?? "none") \($0.time.milliseconds)" }
    }

    @Test func passTwoMakesSamplesOnlyOfTheTagsTheRulesReadAndCountsEveryRow() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.csv", Self.export(1000))
        let all = try Self.chunks(path, reads: nil)
        let read = try Self.chunks(path, reads: ["p1.count", "p1.state"])
        #expect(Self.samples(all).count == 3000)
        #expect(
            Self.samples(read) == Self.samples(all).filter { !$0.hasPrefix("p1.temp ") },
            "the samples of the tags read, in the file's order; none of the other")
        #expect(read.last?.last == true && read.last?.rowsDone == 3000, "the file's progress counts every row")
        // Each chunk ends before a row of a new second: its rows are those of the seconds it holds.
        var samplesSent = 0
        for chunk in read.dropLast() {
            samplesSent += chunk.samples.count
            #expect(chunk.rowsDone == samplesSent / 2 * 3)
        }
        #expect(read.count > 2)

        // Resumed after the first chunk: the rest, nothing twice, nothing left out.
        let first = try #require(read.first)
        let resumed = try Self.chunks(path, reads: ["p1.count", "p1.state"], skipping: first.rowsDone)
        #expect(Self.samples([first] + resumed) == Self.samples(read))
    }

    /// A chunk ends after `chunkSamples` rows even when few of them give samples: its events
    /// stay as few as before, and the file's progress is committed as often.
    @Test func aChunkEndsAfterAsManyRowsAsItWouldHoldSamples() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.csv", Self.export(1000))
        let read = try Self.chunks(path, reads: ["p1.count"])
        let rows = zip(read, [0] + read.map(\.rowsDone)).map { $0.rowsDone - $1 }
        #expect(read.count == 30, "\(rows)")
        #expect(
            rows.dropLast().allSatisfy { (100...102).contains($0) },
            "cut at the first new second past 100 rows: \(rows)")
        #expect(read.dropLast().allSatisfy { (33...35).contains($0.samples.count) })
        #expect(read.flatMap(\.samples).count == 1000)
    }

    /// A file sorted first resumes after a count of its readings in time order: every mapped
    /// tag's, whatever the rules read, so that a change of rules never moves that point.
    @Test func aFileSortedFirstKeepsEveryMappedTagsSamples() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.csv", Self.export(300) { 1_790_000_000 + ($0 < 150 ? 150 + $0 : $0 - 150) })
        let read = try Self.chunks(path, reads: ["p1.count"])
        #expect(Self.samples(read).count == 900)
        #expect(Self.samples(read) == Self.samples(try Self.chunks(path, reads: nil)))
        #expect(read.last?.rowsDone == 900)
    }

    @Test func passOneStillRejectsABadCellOfAMappedTagNoRuleReads() throws {
        let dir = TemporaryDirectory()
        let path = dir.write(
            "a.csv", Self.export(3).replacingOccurrences(of: "1790000001,P1.TEMP,1.5", with: "1790000001,P1.TEMP,hot"))
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        guard case let .malformed(problem) = HistorianIngestor.check(file, config: Self.config, textTags: []) else {
            Issue.record("the file checked")
            return
        }
        #expect("\(problem.line) \(problem.column) \(problem.reason)" == "6 3 Value: 'hot' is not a number")
    }
}
