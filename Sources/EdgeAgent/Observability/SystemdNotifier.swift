import Foundation
import ServiceLifecycle

/// sd_notify(3) without libsystemd: READY, STOPPING, STATUS and watchdog pings as datagrams to
/// `$NOTIFY_SOCKET`. Does nothing when the agent is not run by systemd.
public struct SystemdNotifier: Sendable {
    let socketPath: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public func notify(_ state: String) {
        guard let socketPath else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in path.enumerated() { buffer[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                state.withCString { sendto(fd, $0, strlen($0), 0, sockaddrPointer, length) }
            }
        }
    }
}

/// Pings systemd's watchdog at half of `WatchdogSec` while the agent runs.
struct SystemdWatchdog: Service {
    let notifier: SystemdNotifier
    let interval: Duration

    /// Nil when systemd set no watchdog.
    init?(notifier: SystemdNotifier, environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard notifier.socketPath != nil, let usec = environment["WATCHDOG_USEC"].flatMap(Int64.init), usec > 0 else {
            return nil
        }
        self.notifier = notifier
        interval = .microseconds(usec / 2)
    }

    func run() async throws {
        try await untilGracefulShutdown {
            while !Task.isCancelled {
                notifier.notify("WATCHDOG=1")
                try await Task.sleep(for: interval)
            }
        }
    }
}
