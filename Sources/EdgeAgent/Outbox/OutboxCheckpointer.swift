import Dispatch
import Foundation
import Synchronization

/// Checkpoints the writer's WAL on a thread and a connection of its own: copying the pages the
/// commits wrote into the database file, and syncing it, runs beside the next commits instead of
/// inside the one that filled the WAL.
///
/// The writer's connection wakes it after a commit that leaves three quarters of the WAL's
/// budget or more (`committed`). The WAL stays bounded as before: a commit that leaves the whole
/// budget checkpoints on the writer's connection, as `wal_autocheckpoint` does, and finds most of
/// the WAL copied already. It first waits for the thread's checkpoint under way, if any: SQLite
/// does not wait for a checkpoint on another connection, so the writer's would copy nothing and
/// the WAL would grow past its budget until a later commit's. That checkpoint is also what lets SQLite start the WAL over while the
/// writer keeps committing (it does so only when a transaction begins after a checkpoint that
/// copied all of it). A checkpoint is SQLite's own crash-safe copy, whichever connection runs
/// it; one that fails here is only left to the next.
final class OutboxCheckpointer: Sendable {
    /// The WAL's budget in pages (`OutboxOptions.walPages`).
    let pages: Int
    private let wakes = DispatchSemaphore(value: 0)
    /// Set from a wake until the thread takes it: wakes while one is pending are one checkpoint.
    private let pending = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    /// Held by the thread while it checkpoints, and by the writer for its own at the budget.
    private let copying = Mutex<Void>(())

    /// Starts the thread, which opens a connection to the database at `path` (it exists).
    init(path: String, pages: Int, synchronous: String) {
        self.pages = pages
        let thread = Thread { [self] in run(path: path, synchronous: synchronous) }
        thread.name = "outbox-checkpoint"
        thread.start()
    }

    /// After each commit of the writer, with the pages in the WAL: at the whole budget, runs the
    /// writer's own `checkpoint` once the thread's under way has ended; at three quarters, wakes
    /// the thread.
    func committed(_ walPages: Int, checkpoint: () -> Void) {
        if walPages >= pages {
            copying.withLock { _ in checkpoint() }
        } else if walPages >= pages * 3 / 4, !pending.exchange(true, ordering: .acquiringAndReleasing) {
            wakes.signal()
        }
    }

    /// Ends the thread after the checkpoint under way, if any, and returns once it has ended.
    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wakes.signal()
        stopped.wait()
    }

    private func run(path: String, synchronous: String) {
        defer { stopped.signal() }
        let connection = try? SQLiteConnection(path: path)
        try? connection?.execute("PRAGMA synchronous=\(synchronous)")
        while true {
            wakes.wait()
            if stopping.load(ordering: .acquiring) { return }
            pending.store(false, ordering: .releasing)
            copying.withLock { _ in _ = connection?.checkpoint() }
        }
    }
}
