import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One agent per outbox: an exclusive `flock` on `data_dir/.lock`, held for the writer's life
/// (as Vector holds its data_dir). A second `run` on the same directory fails at once, naming
/// the process that holds it; the lock goes with the process, so a kill -9 leaves none behind.
/// The CLI's readers (`outbox status`, `dead`, `replay`) never take it.
final class DataDirectoryLock: Sendable {
    private let descriptor: Mutex<Int32?>

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw OutboxError(.unavailable, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder =
                (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                ?? ""
            close(fd)
            throw OutboxError(
                .locked,
                "another edge-agent (pid \(holder.isEmpty ? "unknown" : holder)) is running on \(directory); "
                    + "stop it first (systemctl stop edge-agent), or give this one another agent.data_dir")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        descriptor = Mutex(fd)
    }

    /// Lets the next writer in (a reload opens a new one in the same process).
    func release() {
        if let fd = descriptor.withLock({ fd in
            defer { fd = nil }
            return fd
        }) {
            close(fd)
        }
    }

    deinit { release() }
}
