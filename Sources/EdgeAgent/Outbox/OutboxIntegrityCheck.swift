import EdgeAgentCore
import Logging
import ServiceLifecycle
import Synchronization

/// SPEC 5.3's integrity check at start, off the path of the first reading. `PRAGMA quick_check`
/// reads every page (1.6 s for a 1 GiB outbox on the reference machine), so it runs on a
/// connection and a thread of its own while the agent already polls, appends and forwards (WAL:
/// it reads the snapshot it started on).
///
/// | the check finds | then |
/// |---|---|
/// | `ok` | nothing more; this service waits for shutdown |
/// | a problem | `outbox.damaged` is written beside the database with the problem, and the agent restarts its stages: the writer's next open moves the database to `quarantine/` and starts a new one (`outbox.created`, reason `quarantined`) |
/// | no verdict (a full disk, an I/O error, a lock while it reads) | a warning; the outbox is not touched |
/// | a database too damaged to open | never runs: the writer's open already failed, ran the check itself and quarantined |
///
/// Events appended between the start and the finding stay in the quarantined file (they were
/// written into a damaged database). A stop while the check runs waits for it to finish.
final class OutboxIntegrityCheck: Service, Sendable {
    let options: OutboxOptions
    let logger: Logger
    private let found = Mutex<String?>(nil)

    init(options: OutboxOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// The problem found, once the check has failed.
    var problem: String? { found.withLock { $0 } }

    func run() async throws {
        let path = options.databasePath
        let thread = Confined(())
        let problem: String?
        do {
            problem = try await thread.run { _ in try OutboxDatabase.integrityProblem(path) }
            await thread.shutdown()
        } catch {
            await thread.shutdown()
            // Not damage (a full disk, an I/O error, a lock): the outbox stays; appends report it.
            logger.warning("The outbox's integrity check could not run.", metadata: ["error": "\(error)"])
            try await gracefulShutdown()
            return
        }
        guard let problem else {
            try await gracefulShutdown()
            return
        }
        try OutboxDatabase.markDamaged(options, problem: problem)
        found.withLock { $0 = problem }
        logger.error(
            "The outbox failed its integrity check; restarting on a new one, the damaged one is moved aside.",
            metadata: ["problem": "\(problem)"])
    }
}
