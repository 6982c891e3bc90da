import EdgeAgentCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A folder a historian drops files into: which files are ready to read. inotify wakes it when
/// something is written, moved in or deleted; a rescan every half second covers what inotify
/// misses (network mounts, an overflowed queue). A file is ready once its size and modification
/// time have not changed for `settle`; temporary names (`*.tmp`, `*.part`, `~*`, dotfiles) and
/// names not matching `pattern` are never taken. Only regular files are taken: a symbolic link
/// is never followed (it could point anywhere the agent may read, a credential for one), and is
/// reported once (`newLinks`). Blocking: it lives on its own thread (`Confined`).
final class DropDirectory {
    let directory: String
    let pattern: String
    let settle: Duration
    private var inotify: Int32 = -1
    private var seen: [String: (size: Int64, mtime: Int64, stableSince: ContinuousClock.Instant)] = [:]
    /// Files left where they are because they could not be read, sorted or moved (a full disk, a
    /// permission): taken again once they change, or at `retry`, later after each failure.
    private var parked: [String: (size: Int64, mtime: Int64, retry: ContinuousClock.Instant, failures: Int)] = [:]
    private var scanned = false
    /// Symbolic links in the folder, never taken.
    private var links = Set<String>()
    /// Links found since the last `takeNewLinks()`.
    private var foundLinks: [String] = []

    init(directory: String, pattern: String, settle: Duration) throws {
        self.directory = directory
        self.pattern = pattern
        self.settle = settle
        let fm = FileManager.default
        for sub in ["", "/processed", "/rejected"] {
            try fm.createDirectory(atPath: directory + sub, withIntermediateDirectories: true)
        }
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if inotify >= 0 {
            let mask = UInt32(
                IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB)
            if inotify_add_watch(inotify, directory, mask) < 0 {
                close(inotify)
                inotify = -1  // the rescan alone then
            }
        }
    }

    deinit { if inotify >= 0 { close(inotify) } }

    /// Whether `name` is a file the historian means us to read.
    static func isCandidate(_ name: String, pattern: String) -> Bool {
        if name.hasPrefix(".") || name.hasPrefix("~") || name.hasSuffix(".tmp") || name.hasSuffix(".part") {
            return false
        }
        return fnmatch(pattern, name, 0) == 0
    }

    /// Waits up to `timeout` for a change (or the rescan interval), then returns the files that
    /// have settled, oldest modification time first.
    func ready(waiting timeout: Duration = .milliseconds(500)) -> [String] {
        if scanned { waitForChange(timeout) }  // the first look is at once: files may be waiting
        scanned = true
        let now = ContinuousClock.now
        var present = Set<String>()
        var ready: [(path: String, mtime: Int64)] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where Self.isCandidate(name, pattern: pattern) {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                present.insert(name)
                if links.insert(name).inserted { foundLinks.append(name) }
                continue
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else { continue }
            let size = Int64(info.st_size)
            let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            present.insert(name)
            if let held = parked[name], held.size == size, held.mtime == mtime {
                if now < held.retry { continue }
            } else {
                parked[name] = nil
            }
            if let known = seen[name], known.size == size, known.mtime == mtime {
                if now - known.stableSince >= settle { ready.append((path, mtime)) }
            } else {
                seen[name] = (size, mtime, now)
                if settle == .zero { ready.append((path, mtime)) }
            }
        }
        for name in seen.keys where !present.contains(name) { seen[name] = nil }
        for name in parked.keys where !present.contains(name) { parked[name] = nil }
        links = links.filter { present.contains($0) }
        return ready.sorted { $0.mtime < $1.mtime || ($0.mtime == $1.mtime && $0.path < $1.path) }.map(\.path)
    }

    /// The names of symbolic links found since the last call (each once while it stays).
    func takeNewLinks() -> [String] {
        defer { foundLinks.removeAll() }
        return foundLinks
    }

    /// Done with `path`: moved away, or left where it is and not taken again until it changes or
    /// its retry time comes (5 s after the first failure, doubling up to 5 minutes).
    func taken(_ path: String, parked stays: Bool) {
        let name = (path as NSString).lastPathComponent
        if stays, let known = seen[name] {
            let failures = (parked[name]?.failures ?? 0) + 1
            let wait = Duration.seconds(min(5 << min(failures - 1, 6), 300))
            parked[name] = (known.size, known.mtime, ContinuousClock.now + wait, failures)
        } else {
            parked[name] = nil
        }
        seen[name] = nil
    }

    private func waitForChange(_ timeout: Duration) {
        guard inotify >= 0 else {
            usleep(UInt32(timeout.milliseconds * 1000))
            return
        }
        var descriptor = pollfd(fd: inotify, events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, Int32(timeout.milliseconds)) > 0 {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while read(inotify, &buffer, buffer.count) > 0 {}  // drained: the rescan looks at everything
        }
    }
}
