import EdgeAgentCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The samples of a file whose times go backwards (a per-tag export, say) put in time order with
/// bounded memory: samples are gathered `runSamples` at a time, each run sorted and written to a
/// file under `directory`, and the runs merged. Stable: samples of one time keep the file's
/// order (within a run by their index, across runs by the run's index, runs being written in the
/// file's order). A file that fits in one run is sorted in memory and writes nothing.
/// Blocking: used on the file's thread.
final class SampleSort {
    let directory: String
    let runSamples: Int
    private var buffer: [Sample] = []
    private var runs: [String] = []
    /// Tags by their number in run files (a file maps few tags).
    private var tags: [String] = []
    private var tagNumbers: [String: UInt32] = [:]

    /// `directory` is emptied: what is there is left by an earlier sort (a crash mid-file).
    init(directory: String, runSamples: Int = 50_000) throws {
        self.directory = directory
        self.runSamples = runSamples
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func add(_ samples: [Sample]) throws {
        buffer += samples
        if buffer.count >= runSamples { try writeRun() }
    }

    /// Calls `body` with every sample added, in time order.
    func merge(_ body: (Sample) throws -> Void) throws {
        if runs.isEmpty {
            for i in sortedIndices() { try body(buffer[i]) }
            return
        }
        if !buffer.isEmpty { try writeRun() }
        let readers = try runs.map { try RunReader(path: $0, tags: tags) }
        var heads = try readers.map { try $0.next() }
        while true {
            var best: Int?
            for (i, head) in heads.enumerated() {
                guard let head else { continue }
                if let b = best, let current = heads[b], current.time <= head.time { continue }
                best = i
            }
            guard let best, let sample = heads[best] else { return }
            try body(sample)
            heads[best] = try readers[best].next()
        }
    }

    /// The buffer's indices in time order, stable.
    private func sortedIndices() -> [Int] {
        buffer.indices.sorted { (buffer[$0].time, $0) < (buffer[$1].time, $1) }
    }

    private func writeRun() throws {
        let path = directory + "/run-\(runs.count)"
        var bytes: [UInt8] = []
        bytes.reserveCapacity(buffer.count * 24)
        for i in sortedIndices() { encode(buffer[i], into: &bytes) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SortFailed(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw SortFailed(path: path, reason: String(cString: strerror(errno))) }
            written += n
        }
        runs.append(path)
        buffer.removeAll(keepingCapacity: true)
    }

    /// time (8), tag number (4), quality (1), value kind (1) and value: 8 bytes, or a length (4)
    /// and UTF-8 for text. Little-endian.
    private func encode(_ sample: Sample, into bytes: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        put(sample.time.milliseconds)
        let number: UInt32
        if let known = tagNumbers[sample.tag] {
            number = known
        } else {
            number = UInt32(tags.count)
            tags.append(sample.tag)
            tagNumbers[sample.tag] = number
        }
        put(number)
        put(UInt8(sample.quality == .good ? 0 : 1))
        switch sample.value {
        case nil: put(UInt8(0))
        case let .int(v):
            put(UInt8(1))
            put(v)
        case let .uint(v):
            put(UInt8(2))
            put(v)
        case let .double(v):
            put(UInt8(3))
            put(v.bitPattern)
        case let .bool(v):
            put(UInt8(4))
            put(UInt8(v ? 1 : 0))
        case let .string(v):
            put(UInt8(5))
            put(UInt32(v.utf8.count))
            bytes.append(contentsOf: v.utf8)
        }
    }

    struct SortFailed: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "sorting a historian file in \(path): \(reason)" }
    }

    /// One run file, read back sample by sample through a 64 KiB buffer.
    final class RunReader {
        let fd: Int32
        let path: String
        let tags: [String]
        private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        private var start = 0
        private var end = 0

        init(path: String, tags: [String]) throws {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SortFailed(path: path, reason: String(cString: strerror(errno))) }
            self.path = path
            self.tags = tags
        }

        deinit { close(fd) }

        func next() throws -> Sample? {
            guard try fill(8) else { return nil }
            let time: Int64 = take()
            guard try fill(6) else { throw SortFailed(path: path, reason: "a run ends inside a sample") }
            let tag = tags[Int(take() as UInt32)]
            let quality: Sample.Quality = (take() as UInt8) == 0 ? .good : .bad
            let value: TagValue?
            switch take() as UInt8 {
            case 0: value = nil
            case 1: value = try need(8) { .int(take()) }
            case 2: value = try need(8) { .uint(take()) }
            case 3: value = try need(8) { .double(Double(bitPattern: take())) }
            case 4: value = try need(1) { .bool((take() as UInt8) != 0) }
            default:
                let count = Int(try need(4) { take() as UInt32 })
                value = try need(count) {
                    defer { start += count }
                    return .string(String(decoding: buffer[start..<start + count], as: UTF8.self))
                }
            }
            return Sample(tag: tag, value: value, quality: quality, time: Timestamp(milliseconds: time))
        }

        private func need<T>(_ count: Int, _ read: () -> T) throws -> T {
            guard try fill(count) else { throw SortFailed(path: path, reason: "a run ends inside a sample") }
            return read()
        }

        private func take<T: FixedWidthInteger>() -> T {
            var value = T.zero
            withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: buffer[start..<start + MemoryLayout<T>.size]) }
            start += MemoryLayout<T>.size
            return T(littleEndian: value)
        }

        /// Whether `count` bytes are buffered (false at the file's end before any of them).
        private func fill(_ count: Int) throws -> Bool {
            if end - start >= count { return true }
            if count > buffer.count - (end - start) {
                buffer += [UInt8](repeating: 0, count: count)  // a long text value
            }
            buffer.replaceSubrange(0..<end - start, with: buffer[start..<end])
            (start, end) = (0, end - start)
            while end - start < count {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + end, $0.count - end) }
                if n < 0, errno == EINTR { continue }
                guard n >= 0 else { throw SortFailed(path: path, reason: String(cString: strerror(errno))) }
                if n == 0 {
                    guard end == start else { throw SortFailed(path: path, reason: "a run ends inside a sample") }
                    return false
                }
                end += n
            }
            return true
        }
    }
}
