import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// `Type=notify` with `WatchdogSec`: the agent tells systemd it is ready, keeps pinging, says when it stops.
    @Suite struct SystemdNotifyTests {
        /// A datagram socket standing in for systemd's notify socket.
        final class NotifySocket {
            let fd: Int32
            let path: String

            init(path: String) throws {
                self.path = path
                fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
                var address = sockaddr_un()
                address.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                    for (i, byte) in path.utf8.enumerated() { buffer[i] = byte }
                }
                let rc = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
                guard rc == 0 else { throw TestFailure("bind \(path) failed") }
                var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            }

            /// The next message, or nil after 200 ms of silence.
            func receive() -> String? {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buffer, buffer.count, 0)
                return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
            }

            deinit { close(fd) }
        }

        @Test func notifiesReadyPingsTheWatchdogAndSaysStopping() async throws {
            let dir = TemporaryDirectory()
            let notify = try NotifySocket(path: dir.file("notify.sock"))
            let agent = AgentHarness(sinkURL: "http://127.0.0.1:9/v1/events", directory: dir)
            try agent.start(events: 10, environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"])
            var messages: [String] = []
            _ = await eventually(timeout: .seconds(10), every: .milliseconds(1)) {
                if let m = notify.receive() { messages.append(m) }
                return messages.filter { $0 == "WATCHDOG=1" }.count >= 3
            }
            #expect(messages.contains("READY=1\nSTATUS=running"))
            #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 3, "\(messages)")
            #expect(await agent.stop() == 0)
            var rest: [String] = []
            while let m = notify.receive() { rest.append(m) }
            #expect(rest.contains("STOPPING=1"))
        }
    }
}
