import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// Pass two makes samples only of the mapped tags the rules read or publish (`RuleSet.reads`),
/// and of another tag only at a time that has no sample yet: the time is still a reading, which
/// moves the machines fed by files. Pass one still checks every mapped cell, and a file's
/// progress still counts its rows and is cut where a time starts, so a resume skips exactly what
/// was committed, whatever the rules read then.
@Suite struct HistorianReadsTests {
    static var config: HistorianConfig {
        var config = HistorianConfig(name: "t", directory: "/unused", timestampColumn: "Timestamp")
        config.timestampFormat = "unix_s"
        config.tagColumn = "TagName"
        config.valueColumn = "Value"
        config.tags = [
            (source: "P1.COUNT", tag: "p1.count"), (source: "P1.TEMP", tag: "p1.temp"),
            (source: "P1.STATE", tag: "p1.state"), (source: "P1.AMB", tag: "p1.ambient"),
        ]
        return config
    }

    /// `times` seconds of rows; `rows(i)` gives second i's tags and values, in the file's order.
    static func export(_ times: Int, at: (Int) -> Int = { 1_790_000_000 + $0 }, rows: (Int) -> [(String, String)])
        -> String
    {
        var text = "Timestamp,TagName,Value\n"
        for i in 0..<times {
            for (tag, value) in rows(i) { text += "\(at(i)),\(tag),\(value)\n" }
        }
        return text
    }

    /// Three mapped tags a second: a counter, a temperature, a state.
    static func threeTags(_ i: Int) -> [(String, String)] {
        [("P1.COUNT", "\(i)"), ("P1.TEMP", "\(i).5"), ("P1.STATE", "\(i % 2)")]
    }

    /// Pass one, then pass two's chunks after the first `done` rows.
    static func chunks(
        _ path: String, config: HistorianConfig = config, reads: Set<String>?, skipping done: Int = 0
    ) throws -> [HistorianIngestor.Chunk] {
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

    /// What a sample of a tag the rules do not read is kept for: it is the first at its time.
    static func expected(_ all: [HistorianIngestor.Chunk], reads: Set<String>) -> [String] {
        var made: Timestamp?
        return all.flatMap(\.samples).filter { sample in
            guard reads.contains(sample.tag) || made != sample.time else { return false }
            made = sample.time
            return true
        }.map { "\($0.tag) \($0.value.map { "\($0)" } ?? "none") \($0.time.milliseconds)" }
    }

    @Test func passTwoMakesSamplesOfTheTagsReadAndOneAtATimeWithoutThem() throws {
        let dir = TemporaryDirectory()
        // Every third second only tags no rule reads: a temperature and the ambient.
        let path = dir.write(
            "a.csv",
            Self.export(999) { $0 % 3 == 2 ? [("P1.TEMP", "\($0).5"), ("P1.AMB", "20")] : Self.threeTags($0) })
        let reads: Set<String> = ["p1.count", "p1.state"]
        let all = try Self.chunks(path, reads: nil)
        let read = try Self.chunks(path, reads: reads)
        #expect(Self.samples(all).count == 666 * 3 + 333 * 2)
        #expect(Self.samples(read) == Self.expected(all, reads: reads))
        #expect(Self.samples(read).count == 666 * 2 + 333, "two a second read, one for each second without them")
        #expect(read.last?.last == true && read.last?.rowsDone == 666 * 3 + 333 * 2, "the progress counts every row")

        // Resumed after the first chunk: the rest, nothing twice, nothing left out.
        let first = try #require(read.first)
        let resumed = try Self.chunks(path, reads: reads, skipping: first.rowsDone)
        #expect(Self.samples([first] + resumed) == Self.samples(read))
    }

    /// A machine fed by files moves only with their times: seconds holding only a tag no rule
    /// reads still let a quality exception reach its `min_duration` and a `min_interval` pass.
    @Test func theRulesGiveTheSameEventsFromTheTagsTheyReadAsFromEveryTag() throws {
        let dir = TemporaryDirectory()
        var config = Self.config
        config.tags.append((source: "P1.MELT", tag: "p1.melt"))
        let path = dir.write(
            "a.csv",
            Self.export(102) { i in
                switch i {
                case 0: [("P1.COUNT", "0")]
                case 10: [("P1.COUNT", "1")]
                case 20: [("P1.MELT", "265")]
                case 101: [("P1.COUNT", "2"), ("P1.MELT", "250")]
                default: i > 20 ? [("P1.AMB", "20")] : []
                }
            })
        let rules = RuleSet(machines: [
            RuleSet.Machine(
                name: "p1", counters: [RuleSet.Counter(tag: "p1.count", minInterval: 60_000)],
                quality: [
                    MachineConfig.QualityCheck(
                        name: "melt", tag: "p1.melt", condition: .limits(low: nil, high: 260, hysteresis: 2),
                        minDuration: .seconds(5))
                ], wallClock: false)
        ])
        func events(reads: Set<String>?) throws -> [String] {
            var engine = RuleEngine(rules: rules)
            return try Self.chunks(path, config: config, reads: reads).flatMap { engine.apply($0.samples) }
                .map { "\($0.type) \($0.time.milliseconds / 1000 - 1_790_000_000) \($0.data)" }
        }
        let fromReads = try events(reads: rules.reads)
        #expect(!rules.reads.contains("p1.ambient"))
        #expect(fromReads == (try events(reads: nil)))
        #expect(
            fromReads.map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == [
                // Raised once held 5 s (at 25), the first count's minute over at 70, the last still open.
                "quality.exception.raised 20", "production.completed 10", "quality.exception.cleared 101",
            ], "\(fromReads)")
    }

    /// Where the rules do not read a second's first tag, its chunk still ends before that row:
    /// a resume under rules that read more takes the whole second, never half of it.
    @Test func aChunkEndsWhereASecondStartsWhateverTheRulesRead() throws {
        let dir = TemporaryDirectory()
        let path = dir.write(
            "a.csv", Self.export(1000) { [("P1.TEMP", "\($0).5")] + Self.threeTags($0).filter { $0.0 != "P1.TEMP" } })
        let read = try Self.chunks(path, reads: ["p1.state"])
        #expect(read.count > 2)
        #expect(read.allSatisfy { $0.rowsDone % 3 == 0 }, "\(read.map(\.rowsDone))")
        let first = try #require(read.first)
        let all = try Self.chunks(path, reads: nil)
        let resumed = try Self.chunks(path, reads: nil, skipping: first.rowsDone)
        #expect(Self.samples(resumed) == Array(Self.samples(all).dropFirst(first.rowsDone)))
    }

    /// A chunk ends after `chunkSamples` rows even when few of them give samples: its events
    /// stay as few as before, and the file's progress is committed as often.
    @Test func aChunkEndsAfterAsManyRowsAsItWouldHoldSamples() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.csv", Self.export(1000, rows: Self.threeTags))
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
        let path = dir.write(
            "a.csv", Self.export(300, at: { 1_790_000_000 + ($0 < 150 ? 150 + $0 : $0 - 150) }, rows: Self.threeTags))
        let read = try Self.chunks(path, reads: ["p1.count"])
        #expect(Self.samples(read).count == 900)
        #expect(Self.samples(read) == Self.samples(try Self.chunks(path, reads: nil)))
        #expect(read.last?.rowsDone == 900)
    }

    @Test func passOneStillRejectsABadCellOfAMappedTagNoRuleReads() throws {
        let dir = TemporaryDirectory()
        let path = dir.write(
            "a.csv",
            Self.export(3, rows: Self.threeTags).replacingOccurrences(
                of: "1790000001,P1.TEMP,1.5", with: "1790000001,P1.TEMP,hot"))
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        guard case let .malformed(problem) = HistorianIngestor.check(file, config: Self.config, textTags: []) else {
            Issue.record("the file checked")
            return
        }
        #expect("\(problem.line) \(problem.column) \(problem.reason)" == "6 3 Value: 'hot' is not a number")
    }
}
