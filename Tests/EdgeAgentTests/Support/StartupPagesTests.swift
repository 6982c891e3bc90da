import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@testable import EdgeAgent

/// Releasing the read-only pages of the loaded ELF objects in a running process (this test
/// runner, with the other tests running beside it): its file-backed resident memory drops, code
/// and constants still work afterwards because they fault back in from the file, and no other
/// memory is touched.
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

    @Test func releasesTheExecutablesReadOnlyPagesAndCodeStillRuns() throws {
        let before = try resident("RssFile")
        let released = StartupPages.release()
        let after = try resident("RssFile")
        #expect(released > 1 << 20, "the executable's code and constants are megabytes")
        #expect(after < before, "RssFile \(before) KiB before, \(after) KiB after releasing \(released) bytes")

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

    /// Memory that is no object's read-only segment keeps what it holds: an anonymous mapping,
    /// a private writable mapping of a file with a page written, as a data segment is mapped.
    @Test func memoryOutsideTheObjectsReadOnlySegmentsKeepsItsContents() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let directory = TemporaryDirectory()
        let path = directory.file("segment")
        let contents = (0..<(4 * page)).map { UInt8(truncatingIfNeeded: $0 &* 3) }
        try Data(contents).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let file = try #require(mmap(nil, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0))
        try #require(file != MAP_FAILED)
        defer { munmap(file, 4 * page) }
        let anonymous = try #require(mmap(nil, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        try #require(anonymous != MAP_FAILED)
        defer { munmap(anonymous, 4 * page) }
        var expected = contents
        let (fileBytes, anonymousBytes) = (
            file.bindMemory(to: UInt8.self, capacity: 4 * page),
            anonymous.bindMemory(to: UInt8.self, capacity: 4 * page)
        )
        for i in 0..<(4 * page) {
            if (page..<(2 * page)).contains(i) {
                fileBytes[i] = 0xA5
                expected[i] = 0xA5
            }
            anonymousBytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 1)
        }
        #expect(StartupPages.release() > 1 << 20)
        #expect((0..<(4 * page)).allSatisfy { fileBytes[$0] == expected[$0] }, "the file mapping's written page")
        #expect((0..<(4 * page)).allSatisfy { anonymousBytes[$0] == UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
    }

    /// A page of an object's read-only segment that the process wrote (as a debugger's
    /// breakpoint or a loader's fix-up does) keeps what was written: its mapping is left whole.
    @Test func aWrittenPageOfAReadOnlySegmentKeepsWhatWasWritten() throws {
        // The last padding byte of the test runner's ELF header (e_ident[15]), which nothing
        // reads after the load: the header sits just before the program headers, in the first
        // segment, not writable. Written through /proc/self/mem, as a debugger writes a
        // breakpoint: the page's protection never changes.
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let executable = try #require(StartupPages.loadedObjects().first)
        let header = try UInt(bitPattern: #require(executable.headers)) - 64
        let mapping = try #require(StartupPages.mappings().first { $0.range.contains(header) })
        try #require(mapping.isPrivate && !mapping.writable && mapping.copiedKiB == 0)
        let magic = try #require(UnsafePointer<UInt32>(bitPattern: header))
        try #require(magic.pointee == 0x464C_457F, "an ELF header before the program headers")
        let byte = try #require(UnsafePointer<UInt8>(bitPattern: header + 15))
        let start = try #require(UnsafeMutableRawPointer(bitPattern: header / page * page))
        let original = byte.pointee
        func write(_ value: UInt8) throws {
            let memory = open("/proc/self/mem", O_RDWR | O_CLOEXEC)
            try #require(memory >= 0)
            defer { close(memory) }
            var value = value
            try #require(pwrite(memory, &value, 1, off_t(header + 15)) == 1)
        }
        // Not between another test's listing and its advice (`serial`).
        try StartupPages.serial.withLock { _ in try write(original ^ 0xFF) }
        defer {
            // The file's byte again, and the file's page: later releases take the mapping again.
            StartupPages.serial.withLock { _ in
                try? write(original)
                _ = madvise(start, Int(page), MADV_DONTNEED)
            }
        }
        StartupPages.release()
        #expect(byte.pointee == original ^ 0xFF, "the written byte, not the file's")
    }

    /// Every mapping is listed, not only those in the first page /proc gives (a few): libc's
    /// code, and dozens of mappings of files.
    @Test func everyMappingOfAFileIsListed() throws {
        let getpid = try #require(dlsym(nil, "getpid"))
        let listed = StartupPages.mappings()
        #expect(listed.contains { $0.range.contains(UInt(bitPattern: getpid)) }, "libc's code")
        #expect(listed.count > 40, "\(listed.count) mappings of files")
    }

    /// A library that was loaded when the pages were released stays loaded: no thread can
    /// unmap the ranges advised and have them reused by memory that the advice would zero.
    @Test(.enabled(if: dlopen("libutil.so.1", RTLD_LAZY | RTLD_NOLOAD) == nil, "libutil.so.1 is not loaded yet"))
    func aLibraryLoadedAtAReleaseIsNeverUnloaded() throws {
        let library = "libutil.so.1"  // glibc's, which nothing here loads otherwise
        let handle = try #require(dlopen(library, RTLD_NOW))
        StartupPages.release()
        dlclose(handle)
        #expect(dlopen(library, RTLD_LAZY | RTLD_NOLOAD) != nil, "still loaded after its last dlclose")
    }
}
