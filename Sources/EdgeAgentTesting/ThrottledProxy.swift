import Foundation
import Synchronization

/// A slow link: a TCP proxy on 127.0.0.1 that passes what its clients send on to `upstream` at
/// `bytesPerSecond`, and the answers back at full speed. Between the agent and a broker, a batch
/// then takes longer than the sink's PUBACK timeout, as on a congested plant network.
public final class ThrottledProxy: Sendable {
    public let port: Int
    private let listener: Int32
    /// Every open socket, closed by `stop()` (which ends the threads blocked on them).
    private let sockets = Mutex<Set<Int32>>([])

    public init(upstream: Int, bytesPerSecond: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound, listen(listener, 8) == 0 else {
            close(listener)
            throw TestFailure("the proxy cannot listen: errno \(errno)")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }  // closed by stop()
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = Self.loopback(port: upstream)
                let connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                    }
                }
                guard connected else {
                    close(client)
                    close(server)
                    continue
                }
                sockets.withLock { $0.formUnion([client, server]) }
                Thread.detachNewThread { self.pump(from: client, to: server, bytesPerSecond: bytesPerSecond) }
                Thread.detachNewThread { self.pump(from: server, to: client, bytesPerSecond: nil) }
            }
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// Copies until either side closes, then shuts both down; `bytesPerSecond` paces the copy.
    private func pump(from source: Int32, to destination: Int32, bytesPerSecond: Int?) {
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            let written = buffer.withUnsafeBytes { send(destination, $0.baseAddress, count, Int32(MSG_NOSIGNAL)) }
            guard written == count else { break }
            if let bytesPerSecond { usleep(UInt32(count * 1_000_000 / bytesPerSecond)) }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
    }

    /// Closes the listener and every connection.
    public func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in sockets.withLock({ $0 }) { shutdown(fd, Int32(SHUT_RDWR)) }
    }
}
