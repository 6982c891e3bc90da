import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Gives back the pages of code and constants that only the start needed.
///
/// The executable is one static file holding the Swift runtime, Foundation, NIO, Yams, the
/// argument parser and ours, and the shared C libraries add theirs (libc, SQLite, libstdc++,
/// libcrypto through libmosquitto). Starting touches code scattered across most of it (parsing
/// the command line and the YAML, validating, opening and migrating the outbox, bootstrapping
/// NIO, initialising OpenSSL), and the kernel maps a window of pages around every such fault,
/// so a settled agent would hold most of its resident memory in file pages it will not run
/// again. The steady state (poll, decode, rules, append, forward) runs a small part of the
/// code, which the release build lays out together (`packaging/hot-text.order`).
///
/// Once the first reading is committed (the configuration parsed, the outbox open, the first
/// poll and commit done), and again as the start settles (`schedule`), this drops the process's
/// mappings of the loaded segments (`PT_LOAD`: code, constants, symbol and relocation tables,
/// data) of every ELF object it has mapped, with `madvise(MADV_PAGEOUT)`: the kernel reclaims
/// those pages. What runs afterwards faults its pages back in from the file, so resident memory
/// settles at what the agent actually uses. The writable segments count: swiftc puts constants
/// there (statically initialised objects get their metadata pointer written at run time), and
/// our static binary's holds 38 MiB, of which the start reads about 4.
///
/// It also gives the heap back that the start freed: parsing the configuration of a large line
/// allocates far more than the running agent keeps, and the allocator keeps freed pages mapped
/// for its next allocations (`trimHeap`).
///
/// `run` does both twice more before the agent starts (`Agent.releaseStartPages`): before
/// reading the configuration, which drops what the process start touched (the dynamic loader's
/// symbol and relocation tables, the runtime's and the argument parser's code), and after, which
/// drops the reading's. Otherwise each phase's pages would stay resident while the next adds its
/// own, and the start's peak would be their sum rather than its largest phase.
///
/// Why this is safe: `MADV_PAGEOUT` never discards. Those mappings are private: a page never
/// written is the file's page, reclaimed and read again from the file when touched; a page
/// written (relocations, the runtime's writes to constants, a debugger's breakpoint) is the
/// process's own copy, which the kernel writes to swap or, without swap, leaves resident. A
/// replaced file (package upgrade) is a new inode; the mapping keeps the old one. That is also
/// what makes the listing's age harmless: another thread may unmap an object between the
/// listing of `/proc/self/maps` and the advice (a library closed) and the address be reused by
/// other memory, whose contents `MADV_DONTNEED` would zero. A kernel without it (before Linux
/// 5.4) releases nothing.
///
/// A service that ends once it has done this (its group ignores that it ended).
struct StartupPages: Service {
    /// When, from the start: once the agent runs (its first delivery is done), so the start's
    /// peak is not added to what comes next (a backlog drained right away), and once more after
    /// what runs beside the start (the integrity check of a large outbox, the first reconnects)
    /// has finished.
    var schedule: [Duration] = [.seconds(1), .seconds(30)]
    let logger: Logger
    /// Rung after each commit of events: the first release waits for the first (or the first
    /// scheduled time): released before the services start, the code they run again would fault
    /// back in on the path of the first reading.
    let firstCommit: Doorbell

    func run() async throws {
        let (commits, _) = firstCommit.subscribe()
        try await untilGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { first in
                first.addTask { for await _ in commits { return } }
                first.addTask { try await Task.sleep(for: schedule[0]) }
                try await first.next()
                first.cancelAll()
            }
            releaseAndLog()
            var waited = Duration.zero
            for time in schedule {
                try await Task.sleep(for: time - waited)
                waited = time
                releaseAndLog()
            }
        }
    }

    private func releaseAndLog() {
        let released = Self.release()
        Self.trimHeap()
        logger.debug("Released the start's code pages.", metadata: ["bytes": "\(released)"])
    }

    /// Returns the whole free pages of the heap (every arena) to the kernel (glibc's
    /// `malloc_trim`, looked up by name: Swift's Glibc module leaves `malloc.h` out); what is
    /// allocated afterwards faults fresh pages in.
    static func trimHeap() {
        #if canImport(Glibc)
            typealias Trim = @convention(c) (Int) -> Int32
            guard let trim = dlsym(nil, "malloc_trim") else { return }
            _ = unsafeBitCast(trim, to: Trim.self)(0)
        #endif
    }

    /// Drops the mappings of the loaded segments of every ELF object mapped; returns the bytes
    /// advised.
    ///
    /// The objects are the private, readable mappings at file offset 0 in `/proc/self/maps` that
    /// start with an ELF header; their program headers are read in place (the first segment
    /// holds them) and the load bias is where that mapping starts minus the first `PT_LOAD`'s
    /// page, as the dynamic loader placed it. Only the parts of those segments that lie in
    /// private mappings of the same file are advised, so nothing else (a shared mapping, the
    /// heap, the anonymous rest of a segment's `.bss`) can be touched whatever the headers say.
    @discardableResult
    static func release() -> Int {
        #if canImport(Glibc)
            let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
            let maps = mappings()
            var released = 0
            for object in maps where object.offsetZero && object.readable && object.isPrivate {
                let mine = maps.filter { $0.file == object.file && $0.isPrivate }
                for segment in loadSegments(
                    at: object.range.lowerBound, mapped: UInt(object.range.count), page: page)
                {
                    for mapping in mine where mapping.range.overlaps(segment) {
                        let range = mapping.range.clamped(to: segment)
                        // Whole pages only.
                        let first = (range.lowerBound + page - 1) / page * page
                        let end = range.upperBound / page * page
                        guard end > first, let address = UnsafeMutableRawPointer(bitPattern: first) else { continue }
                        if giveBack(address, Int(end - first)) { released += Int(end - first) }
                    }
                }
            }
            return released
        #else
            return 0
        #endif
    }

    #if canImport(Glibc)
        /// Asks the kernel to reclaim `length` bytes of pages at `address`, keeping what they hold.
        static func giveBack(_ address: UnsafeMutableRawPointer, _ length: Int) -> Bool {
            madvise(address, length, 21) == 0  // MADV_PAGEOUT (Linux 5.4; not in Swift's Glibc module)
        }

        struct Mapping {
            var range: Range<UInt>
            var readable: Bool
            var isPrivate: Bool
            var offsetZero: Bool
            /// Device and inode.
            var file: Substring
        }

        /// The process's mappings of files (`/proc/self/maps`).
        static func mappings() -> [Mapping] {
            guard let text = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return [] }
            // "start-end perms offset dev inode path"
            return text.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                guard fields.count == 6, fields[5].drop(while: { $0 == " " }).hasPrefix("/"), fields[4] != "0",
                    fields[1].count == 4
                else {
                    return nil
                }
                let bounds = fields[0].split(separator: "-")
                guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                    end > start
                else { return nil }
                let perms = Array(fields[1])
                return Mapping(
                    range: start..<end, readable: perms[0] == "r",
                    isPrivate: perms[3] == "p",
                    offsetZero: fields[2].allSatisfy { $0 == "0" },
                    file: line[fields[3].startIndex..<fields[4].endIndex])
            }
        }

        /// The address ranges of the `PT_LOAD` segments of the ELF object whose first mapping
        /// starts at `start`; none if it is not a 64-bit ELF object, its headers do not fit the
        /// mapping, or it is no longer mapped.
        static func loadSegments(at start: UInt, mapped size: UInt, page: UInt) -> [Range<UInt>] {
            guard size >= 64, let header = copy(at: start, count: 64),
                header.field(0, UInt32.self) == 0x464C_457F,  // "\u{7F}ELF"
                header.field(4, UInt8.self) == 2  // ELFCLASS64
            else { return [] }
            let headerOffset = UInt(header.field(32, UInt64.self))  // e_phoff
            let entrySize = UInt(header.field(54, UInt16.self))  // e_phentsize
            let count = UInt(header.field(56, UInt16.self))  // e_phnum
            guard entrySize >= 56, headerOffset + entrySize * count <= size,
                let table = copy(at: start + headerOffset, count: Int(entrySize * count))
            else { return [] }
            // Elf64_Phdr: p_type u32 @0, p_vaddr @16, p_memsz @40.
            let segments = (0..<count).map { index in
                let at = Int(index * entrySize)
                return (
                    type: table.field(at, UInt32.self),
                    address: UInt(table.field(at + 16, UInt64.self)),
                    size: UInt(table.field(at + 40, UInt64.self))
                )
            }
            let load: UInt32 = 1
            guard let first = segments.first(where: { $0.type == load }) else { return [] }
            let bias = start &- first.address / page * page
            return segments.filter { $0.type == load }.map {
                (bias &+ $0.address)..<(bias &+ $0.address &+ $0.size)
            }
        }

        /// `count` bytes of this process's memory at `address`, read through `/proc/self/mem`; nil when
        /// they are not all mapped. A mapping listed in `/proc/self/maps` can be gone when it is
        /// read, unmapped meanwhile by another thread (librdkafka's start beside the release
        /// met it): read in place, it would end the process with SIGSEGV.
        static func copy(at address: UInt, count: Int) -> [UInt8]? {
            guard count > 0, address <= UInt(Int64.max) else { return nil }
            let memory = open("/proc/self/mem", O_RDONLY | O_CLOEXEC)
            guard memory >= 0 else { return nil }
            defer { close(memory) }
            var bytes = [UInt8](repeating: 0, count: count)
            let copied = bytes.withUnsafeMutableBytes { pread(memory, $0.baseAddress, count, off_t(address)) }
            return copied == count ? bytes : nil
        }
    #endif
}

#if canImport(Glibc)
    extension [UInt8] {
        /// The integer at `offset`, in this machine's byte order.
        fileprivate func field<T: FixedWidthInteger>(_ offset: Int, _ type: T.Type) -> T {
            withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        }
    }
#endif
