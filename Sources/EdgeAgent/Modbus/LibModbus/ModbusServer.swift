import CModbus
import Foundation
import Synchronization

/// A Modbus TCP server on libmodbus's server side: one thread, `select` over the listening socket
/// and its clients, replies from one register map. The simulator writes that map between requests.
///
/// `@unchecked Sendable`: the libmodbus context and sockets are touched only by the server thread;
/// the map is shared with `write`/`read` under `lock`.
public final class ModbusServer: @unchecked Sendable {
    private let context: OpaquePointer
    private let mapping: UnsafeMutablePointer<modbus_mapping_t>
    private let lock = NSLock()
    private let listener: Int32
    private let stopping = Atomic<Bool>(false)
    private var thread: Thread?
    public let port: Int
    public static let size: Int32 = 10_000

    /// Listens on `host:port` (port 0 picks a free one).
    public init(host: String, port: Int) throws {
        guard let context = modbus_new_tcp(host, Int32(port)) else {
            throw ModbusError(code: .invalidArgument, message: String(cString: modbus_strerror(cmodbus_errno())), context: "listen \(host):\(port)")
        }
        self.context = context
        guard let mapping = modbus_mapping_new(Self.size, Self.size, Self.size, Self.size) else {
            modbus_free(context)
            throw ModbusError(code: .invalidArgument, message: "cannot allocate the register map", context: "")
        }
        self.mapping = mapping
        let listener = modbus_tcp_listen(context, 16)
        guard listener >= 0 else {
            let message = String(cString: modbus_strerror(cmodbus_errno()))
            modbus_mapping_free(mapping)
            modbus_free(context)
            throw ModbusError(code: .connection, message: message, context: "listen \(host):\(port)")
        }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.name = "modbus-server"
        self.thread = thread
        thread.start()
    }

    /// Stops serving; returns once the server thread has closed every socket.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        while thread?.isFinished == false { usleep(5000) }
    }

    deinit {
        stop()
        modbus_mapping_free(mapping)
        modbus_free(context)
    }

    public func write(holding address: Int, _ values: [UInt16]) {
        lock.withLock { for (i, v) in values.enumerated() { mapping.pointee.tab_registers[address + i] = v } }
    }

    public func write(input address: Int, _ values: [UInt16]) {
        lock.withLock { for (i, v) in values.enumerated() { mapping.pointee.tab_input_registers[address + i] = v } }
    }

    public func write(coil address: Int, _ value: Bool) {
        lock.withLock { mapping.pointee.tab_bits[address] = value ? 1 : 0 }
    }

    public func write(discrete address: Int, _ value: Bool) {
        lock.withLock { mapping.pointee.tab_input_bits[address] = value ? 1 : 0 }
    }

    private func serve() {
        var clients: [Int32] = []
        var query = [UInt8](repeating: 0, count: Int(MODBUS_TCP_MAX_ADU_LENGTH))
        while !stopping.load(ordering: .relaxed) {
            var set = fd_set()
            fdZero(&set)
            fdSet(listener, &set)
            for fd in clients { fdSet(fd, &set) }
            var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
            let ready = select(max(listener, clients.max() ?? listener) + 1, &set, nil, nil, &timeout)
            guard ready > 0 else { continue }
            if fdIsSet(listener, &set) {
                var server = listener
                let fd = modbus_tcp_accept(context, &server)
                if fd >= 0 { clients.append(fd) }
            }
            for fd in clients where fdIsSet(fd, &set) {
                modbus_set_socket(context, fd)
                let n = query.withUnsafeMutableBufferPointer { modbus_receive(context, $0.baseAddress) }
                if n > 0 {
                    lock.withLock { _ = query.withUnsafeBufferPointer { modbus_reply(context, $0.baseAddress, n, mapping) } }
                } else if n == -1 {
                    close(fd)
                    clients.removeAll { $0 == fd }
                }
            }
        }
        for fd in clients { close(fd) }
        close(listener)
    }
}

// fd_set helpers: the FD_* macros are not imported into Swift.
private func fdZero(_ set: inout fd_set) { set = fd_set() }

private func fdSet(_ fd: Int32, _ set: inout fd_set) {
    withUnsafeMutableBytes(of: &set) { bytes in
        let words = bytes.bindMemory(to: Int.self)
        words[Int(fd) / Int.bitWidth] |= 1 << (Int(fd) % Int.bitWidth)
    }
}

private func fdIsSet(_ fd: Int32, _ set: inout fd_set) -> Bool {
    withUnsafeMutableBytes(of: &set) { bytes in
        let words = bytes.bindMemory(to: Int.self)
        return words[Int(fd) / Int.bitWidth] & (1 << (Int(fd) % Int.bitWidth)) != 0
    }
}
