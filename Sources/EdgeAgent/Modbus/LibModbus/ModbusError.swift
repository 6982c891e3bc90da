/// A failed Modbus request or connection, with what the operator needs: the device, what was
/// asked, and whether the device answered with an exception or did not answer at all.
public struct ModbusError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        /// The device answered with a Modbus exception (1 illegal function, 2 illegal address, ...).
        case exception(Int)
        case timeout
        /// No connection, or it broke.
        case connection
        case invalidArgument
        /// A reply that does not parse (CRC, length, wrong unit).
        case badResponse
    }

    public var code: Code
    public var message: String
    /// `area 100+4` style context for logs.
    public var context: String

    public init(code: Code, message: String, context: String) {
        self.code = code
        self.message = message
        self.context = context
    }

    public var description: String { context.isEmpty ? message : "\(context): \(message)" }

    /// An exception answers for the request only; everything else means the link is in doubt.
    public var isException: Bool { if case .exception = code { true } else { false } }
}
