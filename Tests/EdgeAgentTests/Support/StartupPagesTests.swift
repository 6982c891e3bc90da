import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// A global in the test runner's writable segment, written before a release.
nonisolated(unsafe) private var writtenBeforeTheRelease = 7

/// Releasing the pages of the mapped ELF objects in a running process (this test runner, with
/// the other tests running beside it): its file-backed resident memory drops, code and
/// constants still work afterwards because they fault back in from the file, and what the
/// process wrote keeps its value.
@Suite struct StartupPagesTests {
    /// A field of this process's `/proc/self/status` (`RssFile`, `RssAnon`), KiB.
    func resident(_ field: String) throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix(field + ":") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    /// Memory freed in the middle of the heap (as a parsed configuration leaves it: every 16th
    /// block still in use, so the allocator cannot shrink the heap from its top) goes back to the
    /// kernel: the anonymous resident memory drops by most of the 32 MiB freed.
    @Test func givesBackTheHeapPagesFreedInTheMiddleOfTheHeap() throws {
        let blocks = (0..<8192).map { _ in malloc(4096)! }
        for block in blocks { memset(block, 1, 4096) }
        for (i, block) in blocks.enumerated() where i % 16 != 0 { free(block) }
        let before = try resident("RssAnon")
        StartupPages.trimHeap()
        let after = try resident("RssAnon")
        for (i, block) in blocks.enumerated() where i % 16 == 0 { free(block) }
        #expect(before - after > 16 << 10, "RssAnon \(before) KiB before, \(after) KiB after trimming")
    }

    /// What `run` calls before and after reading the configuration gives back both: the code
    /// and constants touched so far and the heap freed in its middle.
    @Test func releasingTheStartPagesGivesBackCodeAndTheFreedHeap() throws {
        let blocks = (0..<8192).map { _ in malloc(4096)! }
        for block in blocks { memset(block, 1, 4096) }
        for (i, block) in blocks.enumerated() where i % 16 != 0 { free(block) }
        let (file, anon) = (try resident("RssFile"), try resident("RssAnon"))
        Agent.releaseStartPages()
        let (fileAfter, anonAfter) = (try resident("RssFile"), try resident("RssAnon"))
        for (i, block) in blocks.enumerated() where i % 16 == 0 { free(block) }
        #expect(fileAfter < file, "RssFile \(file) KiB before, \(fileAfter) KiB after")
        #expect(anon - anonAfter > 16 << 10, "RssAnon \(anon) KiB before, \(anonAfter) KiB after")
    }

    @Test func releasesTheExecutablesPagesAndCodeAndWrittenDataStillWork() throws {
        writtenBeforeTheRelease = 42
        let before = try resident("RssFile")
        let released = StartupPages.release()
        let after = try resident("RssFile")
        #expect(released > 1 << 20, "the executable's code and constants are megabytes")
        #expect(after < before, "RssFile \(before) KiB before, \(after) KiB after releasing \(released) bytes")
        #expect(writtenBeforeTheRelease == 42, "a written page of the writable segment keeps its contents")

        // The released code and constants run again (faulted back in from the file).
        let config = try ConfigLoader.parse(
            """
            version: 1
            agent: { id: a, site: s, line: l }
            devices: []
            sinks: [ { name: mw, http: { url: "http://127.0.0.1:1/v1/events" } } ]
            """, file: "test.yaml")
        #expect(config.sinks.map(\.name) == ["mw"])
        #expect(StartupPages.release() > 0, "releasing twice is harmless")
    }

    /// The release never discards what a page holds: a range listed as read-only code and reused
    /// by writable memory before the advice (another thread unmapped the object meanwhile) keeps
    /// its contents.
    @Test func aRangeReusedByWritableMemoryBeforeTheReleaseKeepsItsContents() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mapped = try #require(mmap(nil, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(mapped != MAP_FAILED)
        defer { munmap(mapped, 4 * page) }
        let bytes = mapped.bindMemory(to: UInt8.self, capacity: 4 * page)
        for i in 0..<(4 * page) { bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 1) }
        _ = StartupPages.giveBack(mapped, 4 * page)
        #expect((0..<(4 * page)).allSatisfy { bytes[$0] == UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
    }

    /// A mapping listed in `/proc/self/maps` and unmapped before its headers are read (by
    /// another thread) is skipped, not read.
    @Test func aMappingGoneBeforeItIsReadIsSkipped() throws {
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let mapped = try #require(mmap(nil, Int(page), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(mapped != MAP_FAILED)
        let address = UInt(bitPattern: mapped)
        munmap(mapped, Int(page))
        #expect(StartupPages.loadSegments(at: address, mapped: page, page: page).isEmpty)
    }

    /// A private writable mapping of a file, as a data segment is mapped: the pages written
    /// keep what was written, the others read the file again.
    @Test func aPrivateFileMappingKeepsWhatWasWrittenAndReadsTheRestFromItsFile() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let directory = TemporaryDirectory()
        let path = directory.file("segment")
        try Data((0..<(4 * page)).map { UInt8(truncatingIfNeeded: $0 &* 3) }).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let mapped = try #require(mmap(nil, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0))
        #expect(mapped != MAP_FAILED)
        defer { munmap(mapped, 4 * page) }
        let bytes = mapped.bindMemory(to: UInt8.self, capacity: 4 * page)
        var expected = (0..<(4 * page)).map { UInt8(truncatingIfNeeded: $0 &* 3) }
        for i in page..<(2 * page) {
            bytes[i] = 0xA5
            expected[i] = 0xA5
        }
        #expect(StartupPages.giveBack(mapped, 4 * page))
        #expect((0..<(4 * page)).allSatisfy { bytes[$0] == expected[$0] })
    }
}
