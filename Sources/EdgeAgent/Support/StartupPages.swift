import Foundation
import Logging
import ServiceLifecycle
import Synchronization

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
/// mappings of the read-only segments (`PT_LOAD` without `PF_W`: code, constants, symbol and
/// relocation tables) of every ELF object loaded, with `madvise(MADV_DONTNEED)`. The pages stay
/// in the page cache; what runs afterwards maps them again when it touches them, so resident
/// memory settles at what the agent actually uses.
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
/// Why this is safe: those segments are mapped private and read-only and are never written
/// (relocations go to the writable segment, which is left alone; an object with text
/// relocations, `DT_TEXTREL`, is skipped), so their pages are the file's and dropping them
/// loses nothing; a mapping holding a page written anyway (the loader's zero fill past
/// `p_filesz`, a debugger's breakpoint: `/proc/self/smaps` counts it) is left whole. A
/// replaced file (package upgrade) is a new inode; the mapping keeps the old one. The ranges cannot go stale: every object is first pinned
/// (`dlopen(RTLD_NOLOAD | RTLD_NODELETE)`; the executable and the loader are never unloaded),
/// so no thread can unmap it and have its addresses reused by memory whose contents
/// `MADV_DONTNEED` would zero; objects and mappings are listed after that, and only what lies
/// in a private read-only mapping of a file is advised. `MADV_PAGEOUT`, which keeps contents
/// whatever the range holds, cannot be used: the kernel reclaims the file pages only of files
/// the process owns or may write, and the packaged service (`DynamicUser`, a read-only
/// `/usr`) does neither, so it released nothing. Writable segments stay, even where they hold
/// constants (swiftc emits them writable): a page written there would be lost.
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

    /// Drops the mappings of the read-only segments of every ELF object loaded; returns the
    /// bytes advised. One release runs at a time (`serial`).
    @discardableResult
    static func release() -> Int {
        serial.withLock { _ in releaseNow() }
    }

    /// Held by a release from its listing to its last advice: a page written meanwhile would be
    /// advised as the file's. Nothing in the agent writes those pages; a test does, under it.
    static let serial = Mutex(())

    private static func releaseNow() -> Int {
        #if canImport(Glibc)
            let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
            // The executable (listed first, unnamed) is never unloaded; each library is pinned,
            // and known by its name and where it is loaded, so a namesake (another namespace's)
            // is not taken for it.
            var pinned = Set<Pin>()
            for (index, object) in loadedObjects().enumerated() {
                if index == 0, object.name.isEmpty {
                    pinned.insert(Pin(name: "", bias: object.bias))
                } else if !object.name.isEmpty,
                    let handle = dlopen(object.name, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE),
                    let bias = loadBias(handle)
                {
                    pinned.insert(Pin(name: object.name, bias: bias))
                }
            }
            // Listed once every object is pinned: the headers of a pinned object stay mapped, and
            // its ranges stay its own for the process's life. One loaded since is left alone.
            let objects = loadedObjects().filter { pinned.contains(Pin(name: $0.name, bias: $0.bias)) }
                .map(LoadedObject.init).filter { !$0.textRelocations }
            // A mapping holding a page the process wrote (a loader's fix-up, a debugger's
            // breakpoint) is left whole: dropping it would bring the file's page back.
            let maps = mappings().filter { $0.isPrivate && !$0.writable && $0.copiedKiB == 0 }
            var released = 0
            for segment in objects.flatMap(\.readOnlySegments) {
                for mapping in maps where mapping.range.overlaps(segment) {
                    let range = mapping.range.clamped(to: segment)
                    // Whole pages only.
                    let first = (range.lowerBound + page - 1) / page * page
                    let end = range.upperBound / page * page
                    guard end > first, let address = UnsafeMutableRawPointer(bitPattern: first) else { continue }
                    if madvise(address, Int(end - first), MADV_DONTNEED) == 0 { released += Int(end - first) }
                }
            }
            return released
        #else
            return 0
        #endif
    }

    #if canImport(Glibc)
        /// A mapping of a file (`/proc/self/smaps`).
        struct Mapping {
            var range: Range<UInt>
            var writable: Bool
            var isPrivate: Bool
            /// Its pages that are the process's own copies, not the file's: resident or in swap.
            var copiedKiB: Int
        }

        /// The process's mappings of files.
        static func mappings() -> [Mapping] {
            // Read to its end: `String(contentsOfFile:)` stops after the first page a /proc file
            // gives (its size reads 0), which lists only the first few dozen mappings.
            guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps"),
                let data = try? handle.readToEnd()
            else { return [] }
            try? handle.close()
            let text = String(decoding: data, as: UTF8.self)
            var mappings: [Mapping] = []
            var current: Mapping?
            // "start-end perms offset dev inode path", then "Field: value kB" lines.
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                guard let first = fields.first else { continue }
                if first.hasSuffix(":") {
                    if first == "Anonymous:" || first == "Swap:", fields.count > 1, let kib = Int(fields[1]) {
                        current?.copiedKiB += kib
                    }
                    continue
                }
                if let current { mappings.append(current) }
                current = nil
                guard fields.count == 6, fields[5].drop(while: { $0 == " " }).hasPrefix("/"), fields[4] != "0",
                    fields[1].count == 4
                else { continue }
                let bounds = fields[0].split(separator: "-")
                guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                    end > start
                else { continue }
                let perms = Array(fields[1])
                current = Mapping(
                    range: start..<end, writable: perms[1] == "w", isPrivate: perms[3] == "p", copiedKiB: 0)
            }
            if let current { mappings.append(current) }
            return mappings
        }

        /// An object's name and load bias.
        struct Pin: Hashable {
            var name: String
            var bias: UInt
        }

        /// The load bias of the object `handle` opened (`dlinfo(RTLD_DI_LINKMAP)`: `l_addr` is the
        /// link map's first field; looked up by name, as `dl_iterate_phdr`).
        static func loadBias(_ handle: UnsafeMutableRawPointer) -> UInt? {
            typealias Info = @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer?) -> Int32
            guard let symbol = dlsym(nil, "dlinfo") else { return nil }
            var map: UnsafeRawPointer?
            guard unsafeBitCast(symbol, to: Info.self)(handle, 2, &map) == 0, let map else { return nil }
            return map.load(as: UInt.self)
        }

        /// An ELF object the dynamic loader has loaded, as `dl_iterate_phdr` reports it: its
        /// path as loaded (empty for the executable), its load bias and its program headers.
        struct Loaded {
            var name: String
            var bias: UInt
            var headers: UnsafeRawPointer?
            var count: Int
        }

        /// A pinned object's segments, read from its headers and dynamic section in place.
        struct LoadedObject {
            /// The address ranges of its `PT_LOAD` segments without `PF_W`.
            var readOnlySegments: [Range<UInt>]
            /// `DT_TEXTREL`, or `DF_TEXTREL` in `DT_FLAGS`: its code was written by relocations.
            var textRelocations: Bool
        }

        /// The objects loaded now (`dl_iterate_phdr`, looked up by name: Swift's Glibc module
        /// leaves `link.h` out). Only the loader's own record is read here; an object's memory
        /// is read once it is pinned.
        static func loadedObjects() -> [Loaded] {
            typealias Visit = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Int32
            typealias Iterate = @convention(c) (Visit, UnsafeMutableRawPointer?) -> Int32
            guard let symbol = dlsym(nil, "dl_iterate_phdr") else { return [] }
            let found = Found()
            _ = unsafeBitCast(symbol, to: Iterate.self)(
                { info, _, context in
                    guard let info, let context else { return 1 }
                    // struct dl_phdr_info: dlpi_addr @0, dlpi_name @8, dlpi_phdr @16, dlpi_phnum (u16) @24.
                    let name = info.load(fromByteOffset: 8, as: UnsafePointer<CChar>?.self)
                    Unmanaged<Found>.fromOpaque(context).takeUnretainedValue().objects.append(
                        Loaded(
                            name: name.map { String(cString: $0) } ?? "", bias: info.load(as: UInt.self),
                            headers: info.load(fromByteOffset: 16, as: UnsafeRawPointer?.self),
                            count: Int(info.load(fromByteOffset: 24, as: UInt16.self))))
                    return 0
                }, Unmanaged.passUnretained(found).toOpaque())
            return found.objects
        }

        final class Found {
            var objects: [Loaded] = []
        }
    #endif
}

#if canImport(Glibc)
    extension StartupPages.LoadedObject {
        /// Each `Elf64_Phdr` is 56 bytes: `p_type` u32 @0, `p_flags` u32 @4, `p_vaddr` @16,
        /// `p_filesz` @32; each `Elf64_Dyn` 16: `d_tag` @0, `d_val` @8.
        init(_ object: StartupPages.Loaded) {
            let load: UInt32 = 1, dynamic: UInt32 = 2, writable: UInt32 = 2
            var segments: [Range<UInt>] = []
            var textRelocations = false
            for index in 0..<(object.headers == nil ? 0 : object.count) {
                let header = object.headers! + index * 56
                let type = header.loadUnaligned(as: UInt32.self)
                let flags = header.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
                let start = object.bias &+ UInt(header.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
                // The file's part (`p_filesz`): a zero-filled tail past it was written at load.
                let size = UInt(header.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
                let (end, wraps) = start.addingReportingOverflow(size)
                if type == load, flags & writable == 0, size > 0, !wraps { segments.append(start..<end) }
                if type == dynamic, size > 0, let entries = UnsafeRawPointer(bitPattern: start) {
                    for offset in stride(from: 0, to: Int(clamping: size) - 15, by: 16) {
                        let tag = entries.loadUnaligned(fromByteOffset: offset, as: Int64.self)
                        let value = entries.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
                        if tag == 0 { break }
                        if tag == 22 || (tag == 30 && value & 4 != 0) { textRelocations = true }
                    }
                }
            }
            readOnlySegments = segments
            self.textRelocations = textRelocations
        }
    }
#endif
