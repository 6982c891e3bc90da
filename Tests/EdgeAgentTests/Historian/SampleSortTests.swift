import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

@Suite struct SampleSortTests {
    /// Samples in runs written to files come back in time order, samples of one time in the order
    /// they were added, every kind of value as it was.
    @Test func runsMergeIntoAStableTimeOrderWithEveryValueKept() throws {
        let dir = TemporaryDirectory()
        var generator = SystemRandomNumberGenerator()
        let values: [TagValue?] = [
            .int(-5), .uint(UInt64.max), .double(12.5), .bool(true), .string("Auftrag 4711 – ä"), nil, .string(""),
        ]
        let samples = (0..<1_000).map { i in
            Sample(
                tag: "tag-\(i % 13)", value: values[i % values.count],
                time: Timestamp(milliseconds: Int64.random(in: 0..<50, using: &generator) * 1000))
        }
        let expected = samples.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }
            .map(\.element)
        for runSamples in [7, 100, 10_000] {
            let sort = try SampleSort(directory: dir.file("sort-\(runSamples)"), runSamples: runSamples)
            for piece in stride(from: 0, to: samples.count, by: 3) {
                try sort.add(Array(samples[piece..<min(samples.count, piece + 3)]))
            }
            var merged: [Sample] = []
            try sort.merge { merged.append($0) }
            #expect(merged == expected, "runs of \(runSamples)")
        }
    }

    @Test func itsFolderIsEmptiedAtTheStartAndRemovedAtTheEnd() throws {
        let dir = TemporaryDirectory()
        let folder = dir.file("sort")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        dir.write("sort/run-0", "left by a crash")
        do {
            let sort = try SampleSort(directory: folder, runSamples: 2)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
            try sort.add(
                (0..<5).map { Sample(tag: "t", value: .int(Int64($0)), time: Timestamp(milliseconds: 5 - Int64($0))) })
            var merged: [Int64] = []
            try sort.merge { merged.append($0.time.milliseconds) }
            #expect(merged == [1, 2, 3, 4, 5])
        }
        #expect(!FileManager.default.fileExists(atPath: folder))
    }
}
