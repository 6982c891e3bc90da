import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// Pass one in two parts (`HistorianIngestor.splitPoint`, `checkHead`, `TailCheck`, `joined`):
/// whatever the split, the check is what checking the file whole finds, or the file is checked
/// whole.
@Suite struct HistorianSplitCheckTests {
    static var config: HistorianConfig {
        var config = HistorianConfig(name: "t", directory: "/unused", timestampColumn: "Timestamp")
        config.timestampFormat = "unix_s"
        config.tagColumn = "TagName"
        config.valueColumn = "Value"
        config.tags = [(source: "P1.COUNT", tag: "p1.count"), (source: "P1.NOTE", tag: "p1.note")]
        return config
    }

    /// The check of `path` split at `split`, the head and the tail parsed one after the other;
    /// nil: checked whole.
    static func splitCheck(_ path: String, at split: Int64) throws -> HistorianFileStateMachine.Check? {
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        let head = HistorianIngestor.checkHead(file, upTo: split, config: config, textTags: ["p1.note"])
        let tail = HistorianIngestor.TailCheck(split: split, config: config, textTags: ["p1.note"])
        _ = try HistorianIngestor.digests(file, tail: tail)
        return HistorianIngestor.joined(head: head, tail: tail.finish())
    }

    static func wholeCheck(_ path: String) throws -> HistorianFileStateMachine.Check {
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        return HistorianIngestor.check(file, config: config, textTags: ["p1.note"])
    }

    /// Every offset just past a line feed, where `splitPoint` may split.
    static func splits(_ text: String) -> [Int64] {
        text.utf8.enumerated().filter { $0.element == UInt8(ascii: "\n") }.map { Int64($0.offset + 1) }
            .filter { $0 < text.utf8.count }
    }

    static let header = "Timestamp,TagName,Value\n"
    static func rows(_ times: ClosedRange<Int>) -> String {
        times.map { "\(1_790_000_000 + $0),P1.COUNT,\($0)\n" }.joined()
    }

    /// Files and what checking them whole finds.
    static let files: [(name: String, text: String)] = [
        ("valid", header + rows(0...9)),
        ("valid, CRLF", (header + rows(0...9)).replacingOccurrences(of: "\n", with: "\r\n")),
        ("valid, a byte order mark, blank lines", "\u{FEFF}" + header + rows(0...4) + "\n\n" + rows(5...9)),
        ("malformed late", header + rows(0...7) + "1790000008,P1.COUNT,abc\n" + rows(9...9)),
        ("malformed early", header + "1790000000,P1.COUNT\n" + rows(1...9)),
        ("a quote never closed at the end", header + rows(0...8) + "1790000009,P1.NOTE,\"open\n"),
        ("times going backwards late", header + rows(0...7) + rows(3...3) + rows(8...9)),
        ("times going backwards at each line", header + rows(5...5) + rows(4...4) + rows(3...3) + rows(2...2)),
        (
            "quoted fields with line breaks",
            header + rows(0...2) + "1790000003,P1.NOTE,\"line one\nline two\nline three\"\n" + rows(4...5)
                + "1790000006,P1.NOTE,\"a \"\"quote\"\",\n\"\n" + rows(7...9)
        ),
        (
            "a quoted field with a line break, then one not closed",
            header + rows(0...2)
                + "1790000003,P1.NOTE,\"a\nb\"\n" + rows(4...6) + "1790000007,P1.NOTE,x\"y\n"
                + "1790000008,P1.NOTE,\"z\n"
        ),
    ]

    @Test(arguments: files)
    func aFileSplitAtAnyLineBreakChecksAsItDoesWhole(_ name: String, _ text: String) throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.csv", text)
        let whole = try Self.wholeCheck(path)
        var split = 0
        for offset in Self.splits(text) {
            guard let check = try Self.splitCheck(path, at: offset) else { continue }
            #expect(check == whole, "\(name), split at \(offset)")
            split += 1
        }
        #expect(split > 0, "\(name): some split counts")
    }

    @Test func aSplitInsideAQuotedFieldIsCheckedWhole() throws {
        let dir = TemporaryDirectory()
        let text = Self.header + Self.rows(0...2) + "1790000003,P1.NOTE,\"a\n\"\n" + Self.rows(4...6)
        let path = dir.write("a.csv", text)
        #expect(try Self.wholeCheck(path) == .valid(rows: 7, ordered: true))
        // Just past the line break inside the quoted field: read from there, the closing quote
        // opens a field that is never closed.
        let quote = try #require(Array(text.utf8).firstIndex(of: UInt8(ascii: "\"")))
        let inside = Int64(quote + 3)
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        let tail = HistorianIngestor.TailCheck(split: inside, config: Self.config, textTags: ["p1.note"])
        _ = try HistorianIngestor.digests(file, tail: tail)
        guard case .ended(.malformed) = tail.finish() else {
            Issue.record("the tail alone reads the file wrong")
            return
        }
        #expect(try Self.splitCheck(path, at: inside) == nil)
    }

    @Test func aMalformedRowInTheTailIsNamedAtItsLineInTheFile() throws {
        let dir = TemporaryDirectory()
        let text =
            Self.header + Self.rows(0...2) + "1790000003,P1.NOTE,\"a\nb\"\n" + Self.rows(4...6)
            + "1790000007,P1.COUNT,abc\n"
        let path = dir.write("a.csv", text)
        let split = try #require(Self.splits(text).last)
        guard case let .malformed(problem) = try #require(try Self.splitCheck(path, at: split)) else {
            Issue.record("not malformed")
            return
        }
        #expect(problem.line == 10 && problem.column == 3)
    }

    @Test func onlyALargeFileOfTimesReadAloneIsSplitJustPastALineBreak() throws {
        let dir = TemporaryDirectory()
        let text = Self.header + Self.rows(0...200_000)
        let path = dir.write("large.csv", text)
        let file = try HistorianIngestor.OpenFile(path)
        defer { file.close() }
        let split = try #require(HistorianIngestor.splitPoint(file, config: Self.config))
        let bytes = Array(text.utf8)
        #expect(bytes[Int(split) - 1] == UInt8(ascii: "\n"))
        #expect(abs(Double(split) / Double(bytes.count) - 0.6) < 0.01)
        #expect(try Self.splitCheck(path, at: split) == Self.wholeCheck(path))

        var local = Self.config
        local.timestampFormat = "iso8601"
        local.timezone = "Europe/Berlin"
        #expect(HistorianIngestor.splitPoint(file, config: local) == nil, "the repeated-hour rule follows the file")
        local.timezone = "UTC"
        #expect(HistorianIngestor.splitPoint(file, config: local) != nil)

        let small = try HistorianIngestor.OpenFile(dir.write("small.csv", Self.header + Self.rows(0...1000)))
        defer { small.close() }
        #expect(HistorianIngestor.splitPoint(small, config: Self.config) == nil)
    }
}
