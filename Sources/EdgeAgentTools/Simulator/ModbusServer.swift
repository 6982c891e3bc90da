import CModbus
import Dispatch
import EdgeAgent
import Foundation
import Synchronization

/// A Modbus TCP server on libmodbus's server side, for the simulator, the tests and the benches:
/// one thread waits in `poll` on the listening socket, its clients and a wake-up pipe, and
/// answers from one register map that `write` changes between requests.
///
/// Why this is safe without an actor:
/// - The libmodbus context and every socket belong to the server thread's `Loop` alone: created
///   before the thread starts, used and closed only by it.
/// - The register map is shared with `write` under `Registers.lock`.
/// - The thread holds the `Loop`, never the server, so the server's `deinit` runs when its last
///   user lets go, and stops the thread like `stop()`.
/// - `stop()` writes one byte into the pipe, which ends the thread's `poll` at once, and waits for
///   the thread to close its sockets: the wait lasts at most one request's reply (microseconds),
///   so calling it from async code does not hold a cooperative thread for long.
public final class ModbusServer: Sendable {
    public let port: Int
    public static let size: Int32 = 10_000
    private let registers: Registers
    private let wake: Int32
    private let finished = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)

    /// Listens on `host:port` (port 0 picks a free one).
    public init(host: String, port: Int) throws {
        guard let context = modbus_new_tcp(host, Int32(port)) else {
            throw ModbusError(
                code: .invalidArgument, message: String(cString: modbus_strerror(cmodbus_errno())),
                context: "listen \(host):\(port)")
        }
        guard let registers = Registers(size: Self.size) else {
            modbus_free(context)
            throw ModbusError(code: .invalidArgument, message: "cannot allocate the register map", context: "")
        }
        let listener = modbus_tcp_listen(context, 16)
        var pipeEnds: [Int32] = [-1, -1]
        guard listener >= 0, pipe(&pipeEnds) == 0 else {
            let message = String(cString: strerror(errno))
            if listener >= 0 { close(listener) }
            modbus_free(context)
            throw ModbusError(code: .connection, message: message, context: "listen \(host):\(port)")
        }
        self.registers = registers
        self.wake = pipeEnds[1]
        self.port = Self.localPort(listener)
        let loop = Loop(context: context, listener: listener, wake: pipeEnds[0], registers: registers)
        let thread = Thread { [finished] in
            loop.run()
            finished.signal()
        }
        thread.name = "modbus-server"
        thread.start()
    }

    /// Stops serving; returns once the server thread has closed every socket. Idempotent.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = Foundation.write(wake, &byte, 1)
        finished.wait()
        close(wake)
    }

    deinit { stop() }

    public func write(holding address: Int, _ values: [UInt16]) {
        registers.lock.withLock {
            for (i, v) in values.enumerated() { registers.map.pointee.tab_registers[address + i] = v }
        }
    }

    public func write(input address: Int, _ values: [UInt16]) {
        registers.lock.withLock {
            for (i, v) in values.enumerated() { registers.map.pointee.tab_input_registers[address + i] = v }
        }
    }

    public func write(coil address: Int, _ value: Bool) {
        registers.lock.withLock { registers.map.pointee.tab_bits[address] = value ? 1 : 0 }
    }

    public func write(discrete address: Int, _ value: Bool) {
        registers.lock.withLock { registers.map.pointee.tab_input_bits[address] = value ? 1 : 0 }
    }

    private static func localPort(_ socket: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// libmodbus's register map and the lock every access to it takes.
    private final class Registers: @unchecked Sendable {
        let lock = NSLock()
        let map: UnsafeMutablePointer<modbus_mapping_t>

        init?(size: Int32) {
            guard let map = modbus_mapping_new(size, size, size, size) else { return nil }
            self.map = map
        }

        deinit { modbus_mapping_free(map) }
    }

    /// What the server thread owns: the context, the listening socket, the clients and the pipe's
    /// read end. `@unchecked Sendable` only to be handed to the thread once; nothing else uses it.
    private final class Loop: @unchecked Sendable {
        let context: OpaquePointer
        let listener: Int32
        let wake: Int32
        let registers: Registers

        init(context: OpaquePointer, listener: Int32, wake: Int32, registers: Registers) {
            self.context = context
            self.listener = listener
            self.wake = wake
            self.registers = registers
        }

        func run() {
            var clients: [Int32] = []
            var query = [UInt8](repeating: 0, count: Int(MODBUS_TCP_MAX_ADU_LENGTH))
            serving: while true {
                var fds =
                    [
                        pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                    ]
                    + clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                guard poll(&fds, nfds_t(fds.count), -1) > 0 else {
                    if errno == EINTR { continue }
                    break serving
                }
                if fds[0].revents != 0 { break serving }
                for entry in fds.dropFirst(2) where entry.revents != 0 {
                    modbus_set_socket(context, entry.fd)
                    let n = query.withUnsafeMutableBufferPointer { modbus_receive(context, $0.baseAddress) }
                    if n > 0 {
                        registers.lock.withLock {
                            _ = query.withUnsafeBufferPointer {
                                modbus_reply(context, $0.baseAddress, n, registers.map)
                            }
                        }
                    } else if n == -1 {  // the client went away, or sent garbage
                        close(entry.fd)
                        clients.removeAll { $0 == entry.fd }
                    }
                }
                if fds[1].revents & Int16(POLLIN) != 0 {
                    var server = listener
                    let fd = modbus_tcp_accept(context, &server)
                    if fd >= 0 { clients.append(fd) }
                }
            }
            for fd in clients { close(fd) }
            close(listener)
            close(wake)
            modbus_free(context)
        }
    }
}
