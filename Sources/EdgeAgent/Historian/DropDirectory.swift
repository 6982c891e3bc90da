import EdgeAgentCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A folder a historian drops files into, listed: the files and symbolic links whose names it
/// may take (`HistorianFileStateMachine` decides which, and when). inotify wakes it when something
/// is written, moved in or deleted; a rescan every half second covers what inotify misses
/// (network mounts, an overflowed queue). Temporary names (`*.tmp`, `*.part`, `~*`, dotfiles) and
/// names not matching `pattern` are never listed; nor is anything but a regular file or a
/// symbolic link (`lstat`: a link is never followed). Blocking: it lives on its own thread (`Confined`).
final class DropDirectory {
    let directory: String
    let pattern: String
    private var inotify: Int32 = -1

    init(directory: String, pattern: String) throws {
        self.directory = directory
        self.pattern = pattern
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

    /// The folder's entries, after waiting (if `waiting`) up to `timeout` for a change.
    func list(waiting: Bool, timeout: Duration = .milliseconds(500)) -> [HistorianFileStateMachine.Entry] {
        if waiting { waitForChange(timeout) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { Self.isCandidate($0, pattern: pattern) }.compactMap { name in
            var info = stat()
            guard lstat(directory + "/" + name, &info) == 0 else { return nil }
            switch info.st_mode & S_IFMT {
            case S_IFLNK: return .init(name: name, isLink: true)
            case S_IFREG:
                let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                return .init(name: name, size: Int64(info.st_size), modified: modified)
            default: return nil
            }
        }
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
