import CModbus
import EdgeAgentCore
import Foundation

/// One libmodbus context: a TCP connection or a serial line. The only owner of its `modbus_t`,
/// which never leaves this type. Calls block: it lives on a dedicated thread (`Confined`).
///
/// libmodbus aborts on some calls on a closed context, so the connection state is tracked here
/// and every return code is checked; the context is freed only in `deinit`.
public final class ModbusClient {
    public typealias Endpoint = DeviceConfig.Transport

    public let endpoint: Endpoint
    private let context: OpaquePointer
    public private(set) var isConnected = false
    private var unit: Int32 = -1
    private var timeout: Duration = .zero

    public init(_ endpoint: Endpoint, timeout: Duration) throws {
        self.endpoint = endpoint
        let created: OpaquePointer?
        switch endpoint {
        case let .tcp(host, port):
            created = modbus_new_tcp_pi(host, String(port))
        case let .rtu(device, baud, parity, dataBits, stopBits):
            let p: CChar =
                switch parity {
                case .none: 78
                case .even: 69
                case .odd: 79
                }
            created = modbus_new_rtu(device, Int32(baud), p, Int32(dataBits), Int32(stopBits))
        }
        guard let created else {
            throw ModbusError(
                code: .invalidArgument, message: String(cString: modbus_strerror(cmodbus_errno())),
                context: "\(endpoint)")
        }
        context = created
        setTimeout(timeout)
        modbus_set_error_recovery(context, MODBUS_ERROR_RECOVERY_NONE)
    }

    /// The response timeout; devices sharing a serial line each bring their own.
    public func setTimeout(_ timeout: Duration) {
        guard timeout != self.timeout else { return }
        let ms = max(1, timeout.milliseconds)
        modbus_set_response_timeout(context, UInt32(ms / 1000), UInt32(ms % 1000) * 1000)
        self.timeout = timeout
    }

    deinit {
        if isConnected { modbus_close(context) }
        modbus_free(context)
    }

    public func connect() throws {
        guard !isConnected else { return }
        guard modbus_connect(context) == 0 else { throw error("connect") }
        isConnected = true
    }

    public func close() {
        guard isConnected else { return }
        modbus_close(context)
        isConnected = false
    }

    /// Registers (holding or input) from `address`, `count` of them.
    public func readRegisters(input: Bool, unit: Int, address: Int, count: Int) throws -> [UInt16] {
        try read(unit: unit, count: count, what: "\(input ? "input" : "holding") \(address)+\(count)") {
            context, buffer in
            input
                ? modbus_read_input_registers(context, Int32(address), Int32(count), buffer)
                : modbus_read_registers(context, Int32(address), Int32(count), buffer)
        }
    }

    /// Bits (coils or discrete inputs) from `address`, `count` of them.
    public func readBits(discrete: Bool, unit: Int, address: Int, count: Int) throws -> [Bool] {
        let bytes: [UInt8] = try read(
            unit: unit, count: count, what: "\(discrete ? "discrete" : "coil") \(address)+\(count)"
        ) { context, buffer in
            discrete
                ? modbus_read_input_bits(context, Int32(address), Int32(count), buffer)
                : modbus_read_bits(context, Int32(address), Int32(count), buffer)
        }
        return bytes.map { $0 != 0 }
    }

    /// One read call into a fresh buffer; anything but `count` values back is a failure.
    private func read<Value: FixedWidthInteger>(
        unit: Int, count: Int, what: @autoclosure () -> String,
        _ call: (OpaquePointer, UnsafeMutablePointer<Value>?) -> Int32
    ) throws -> [Value] {
        try select(unit)
        var values = [Value](repeating: 0, count: count)
        let n = values.withUnsafeMutableBufferPointer { call(context, $0.baseAddress) }
        guard n == count else { throw failure(n, what()) }
        return values
    }

    private func select(_ unit: Int) throws {
        guard isConnected else {
            throw ModbusError(code: .connection, message: "not connected", context: "\(endpoint)")
        }
        guard Int32(unit) != self.unit else { return }
        guard modbus_set_slave(context, Int32(unit)) == 0 else { throw error("unit \(unit)") }
        self.unit = Int32(unit)
    }

    /// A read that failed: an exception leaves the link up. On TCP anything else closes it, so the
    /// next cycle reconnects instead of reading a half-answered stream; on a serial line a unit that
    /// did not answer says nothing about the line, which is only flushed.
    private func failure(_ n: Int32, _ what: String) -> ModbusError {
        let e = error(what)
        if !e.isException {
            if case .rtu = endpoint, e.code == .timeout { modbus_flush(context) } else { close() }
            if n >= 0 {
                return ModbusError(code: .badResponse, message: "short reply (\(n) values)", context: e.context)
            }
        }
        return e
    }

    private func error(_ what: String) -> ModbusError {
        let errnum = cmodbus_errno()
        let message = String(cString: modbus_strerror(errnum))
        let base = Int32(MODBUS_ENOBASE)
        let code: ModbusError.Code
        switch errnum {
        case base + 1...base + 11: code = .exception(Int(errnum - base))
        case ETIMEDOUT: code = .timeout
        case EINVAL: code = .invalidArgument
        case base + 12...base + 20: code = .badResponse
        default: code = .connection
        }
        return ModbusError(code: code, message: message, context: "\(endpoint) \(what)")
    }
}
