import CModbus
import EdgeAgentCore
import Foundation

/// One libmodbus context: a TCP connection or a serial line. The only owner of its `modbus_t`,
/// which never leaves this type. Calls block: it lives on a dedicated thread (`Confined`).
///
/// libmodbus aborts on some calls on a closed context, so the connection state is tracked here
/// and every return code is checked; the context is freed only in `deinit`. On TCP, libmodbus
/// connects and closes, and the reads are framed here (`ModbusTCPFraming`): one send and, normally,
/// one wait and one receive per request, where libmodbus waits and receives three times.
public final class ModbusClient {
    public typealias Endpoint = DeviceConfig.Transport

    public let endpoint: Endpoint
    private let context: OpaquePointer
    public private(set) var isConnected = false
    private var unit: Int32 = -1
    private var timeout: Duration = .zero
    private var transaction: UInt16 = 0
    private var frame = [UInt8](repeating: 0, count: ModbusTCPFraming.maxFrameLength)

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
        if case .tcp = endpoint {
            let function: ModbusTCPFraming.Function = input ? .inputRegisters : .holdingRegisters
            let data = try exchange(
                function, unit: unit, address: address, count: count,
                what: "\(input ? "input" : "holding") \(address)+\(count)")
            return ModbusTCPFraming.registers(data)
        }
        return try read(unit: unit, count: count, what: "\(input ? "input" : "holding") \(address)+\(count)") {
            context, buffer in
            input
                ? modbus_read_input_registers(context, Int32(address), Int32(count), buffer)
                : modbus_read_registers(context, Int32(address), Int32(count), buffer)
        }
    }

    /// Bits (coils or discrete inputs) from `address`, `count` of them.
    public func readBits(discrete: Bool, unit: Int, address: Int, count: Int) throws -> [Bool] {
        if case .tcp = endpoint {
            let data = try exchange(
                discrete ? .discreteInputs : .coils, unit: unit, address: address, count: count,
                what: "\(discrete ? "discrete" : "coil") \(address)+\(count)")
            return ModbusTCPFraming.bits(data, count: count)
        }
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

    /// How long a TCP read waits for each further part of a reply once its first bytes arrived:
    /// libmodbus's byte timeout, which the agent never changed. The response timeout bounds only
    /// the wait for the first bytes, so a device that sends its reply in pieces is read as before.
    static let byteTimeout: Duration = .milliseconds(500)

    /// libmodbus's EMBMDATA ("Too many data"), a macro Swift does not import.
    private static let tooManyData = Int32(MODBUS_ENOBASE) + 16

    /// One read on TCP: sends the request, waits for the first bytes of its reply up to the
    /// response timeout and for each further part up to `byteTimeout`, until the reply is whole.
    /// A unit id outside 0...255 is refused as libmodbus refused it (the link stays up), and so is
    /// a count the protocol does not allow (the link is closed), both before sending. The first
    /// receive asks for the bytes of a full reply, later ones only for the rest of the frame its
    /// header announces: a full reply never takes bytes of a following frame, but an exception or
    /// a shorter frame followed at once by more bytes takes some, and then fails the length check.
    /// Every failure but an exception or a refused unit closes the link, as `failure` does.
    private func exchange(
        _ function: ModbusTCPFraming.Function, unit: Int, address: Int, count: Int, what: @autoclosure () -> String
    ) throws -> ArraySlice<UInt8> {
        guard isConnected else {
            throw ModbusError(code: .connection, message: "not connected", context: "\(endpoint)")
        }
        guard (0...255).contains(unit) else {
            throw ModbusError(
                code: .invalidArgument, message: String(cString: modbus_strerror(EINVAL)),
                context: "\(endpoint) unit \(unit)")
        }
        guard function.counts.contains(count) else {
            close()
            throw ModbusError(
                code: .badResponse, message: String(cString: modbus_strerror(Self.tooManyData)),
                context: "\(endpoint) \(what())")
        }
        transaction &+= 1
        let request = ModbusTCPFraming.Request(
            transaction: transaction, unit: UInt8(unit), function: function,
            address: UInt16(truncatingIfNeeded: address), count: UInt16(count))
        let socket = modbus_get_socket(context)
        let bytes = request.bytes
        let sent = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw broken(.connection, errno, what()) }
        var deadline = ContinuousClock.now + timeout
        var received = 0
        var length = request.replyLength
        while received < length {
            let left = deadline - .now
            guard left > .zero else { throw broken(.timeout, ETIMEDOUT, what()) }
            var ready = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, Int32(clamping: left.milliseconds + 1))
            if polled == 0 { throw broken(.timeout, ETIMEDOUT, what()) }
            if polled < 0 {
                if errno == EINTR { continue }
                throw broken(.connection, errno, what())
            }
            let wanted = min(length, frame.count) - received
            let n = frame.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + received, wanted, 0) }
            if n == 0 { throw broken(.connection, ECONNRESET, what()) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw broken(.connection, errno, what())
            }
            let before = received
            received += n
            if before < ModbusTCPFraming.headerLength, received >= ModbusTCPFraming.headerLength {
                length = ModbusTCPFraming.frameLength(header: frame[..<ModbusTCPFraming.headerLength])
                guard length <= request.replyLength, length > ModbusTCPFraming.headerLength else {
                    throw invalid("frame of \(length) bytes", what())
                }
            }
            if received < length { deadline = .now + Self.byteTimeout }
        }
        switch ModbusTCPFraming.reply(to: request, frame[..<received]) {
        case let .data(data):
            return data
        case let .exception(code):
            let message = String(cString: modbus_strerror(Int32(MODBUS_ENOBASE) + Int32(code)))
            throw ModbusError(code: .exception(code), message: message, context: "\(endpoint) \(what())")
        case let .invalid(reason):
            throw invalid(reason, what())
        }
    }

    /// A TCP read that failed but for an exception: the link is closed.
    private func broken(_ code: ModbusError.Code, _ errnum: Int32, _ what: String) -> ModbusError {
        close()
        return ModbusError(code: code, message: String(cString: strerror(errnum)), context: "\(endpoint) \(what)")
    }

    private func invalid(_ reason: String, _ what: String) -> ModbusError {
        close()
        return ModbusError(code: .badResponse, message: "invalid reply: \(reason)", context: "\(endpoint) \(what)")
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
